/**
 * Property-based tests of the safetensors reader and writer. Cases per property: `QF_FUZZ_RUNS`
 * (default 200); `pnpm fuzz` runs 20 000. Every case is time-bounded (see fixtures/fuzz.ts).
 *
 * The contract under test: a file from a stranger either reads back correctly or fails with a typed
 * `SafetensorsError` (a `QfError` with a code): never another exception, never a hang, never a read
 * outside the file or of more bytes than the file has, never a result larger than the file.
 */
import { unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DTYPES,
  DTYPE_BYTES,
  type HostTensor,
  SafetensorsError,
  SafetensorsFile,
  blobSource,
  bufferSource,
  serializeSafetensors,
} from '../src/index.js';
import { fileSource, openSafetensors, writeSafetensorsFile } from '../src/node/index.js';
import {
  FUZZ_RUNS,
  SAFETENSORS_CODES,
  type SpySource,
  bytesOf,
  expectReadsInside,
  expectTypedError,
  fuzzParams,
  metadataArb,
  mutate,
  mutationArb,
  propertyTimeout,
  spy,
  tensorsArb,
  timed,
} from './fixtures/fuzz.js';
import { withTempDir } from './helpers.js';

/** Opens `bytes` through an instrumented source (buffer or Blob) and reads everything it lists. */
async function openAndReadAll(
  bytes: Uint8Array,
  via: 'buffer' | 'blob',
): Promise<{ src: SpySource; file?: SafetensorsFile; tensors?: Map<string, HostTensor>; error?: unknown }> {
  const src = spy(
    via === 'buffer' ? bufferSource(bytes) : blobSource(new Blob([bytes as Uint8Array<ArrayBuffer>])),
  );
  let file: SafetensorsFile;
  try {
    file = await SafetensorsFile.open(src);
  } catch (error) {
    return { src, error };
  }
  const tensors = new Map<string, HostTensor>();
  for (const name of file.names()) tensors.set(name, await file.read(name));
  await file.close();
  return { src, file, tensors };
}

/**
 * The oracle for any input: a typed SafetensorsError (and the source closed, nothing read past a
 * bad header), or a read whose every tensor is exactly the bytes its header entry points at, the
 * entries tiling the data section.
 */
async function checkAnyFile(bytes: Uint8Array, via: 'buffer' | 'blob'): Promise<'ok' | string> {
  const { src, file, tensors, error } = await openAndReadAll(bytes, via);
  expectReadsInside(src, bytes.length);
  if (error !== undefined) {
    expectTypedError(error, SAFETENSORS_CODES);
    expect(error).toBeInstanceOf(SafetensorsError);
    expect(src.closed).toBe(true);
    return error.code;
  }
  expect(file).toBeDefined();
  let covered = 0;
  let returned = 0;
  for (const [name, t] of tensors!) {
    const info = file!.info(name)!;
    expect(t.dtype).toBe(info.dtype);
    expect(t.shape).toEqual(info.shape);
    expect(t.data.byteLength).toBe(info.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[info.dtype]);
    const at = file!.dataStart + info.dataOffsets[0];
    expect(bytesOf(t)).toEqual(bytes.subarray(at, at + info.byteLength));
    covered += info.byteLength;
    returned += t.data.byteLength;
  }
  expect(covered).toBe(bytes.length - file!.dataStart);
  expect(returned).toBeLessThanOrEqual(bytes.length);
  return 'ok';
}

function expectSameTensors(actual: Map<string, HostTensor>, expected: Record<string, HostTensor>): void {
  expect([...actual.keys()].sort()).toEqual(Object.keys(expected).sort());
  for (const [name, t] of Object.entries(expected)) {
    const got = actual.get(name)!;
    expect(got.dtype).toBe(t.dtype);
    expect(got.shape).toEqual(t.shape);
    expect(bytesOf(got)).toEqual(bytesOf(t));
  }
}

/** Structural edits of a valid header, re-encoded with a consistent length prefix. */
const headerEditArb = fc.oneof(
  fc.record({
    kind: fc.constant('field' as const),
    pick: fc.nat(),
    field: fc.constantFrom('dtype', 'shape', 'data_offsets'),
    value: fc.oneof(
      fc.jsonValue({ maxDepth: 2 }),
      fc.constantFrom(...DTYPES, 'F8_E4M3', 'f32', ''),
      fc.tuple(fc.integer({ min: -2, max: 80 }), fc.integer({ min: -2, max: 80 })),
      fc.array(fc.integer({ min: 0, max: 6 }), { maxLength: 3 }),
    ),
  }),
  fc.record({
    kind: fc.constant('offset' as const),
    pick: fc.nat(),
    which: fc.constantFrom(0, 1),
    delta: fc.integer({ min: -9, max: 9 }),
  }),
  fc.record({ kind: fc.constant('delete' as const), pick: fc.nat() }),
  fc.record({
    kind: fc.constant('add' as const),
    name: fc.string({ maxLength: 4 }),
    entry: fc.jsonValue({ maxDepth: 2 }),
  }),
  fc.record({ kind: fc.constant('metadata' as const), value: fc.jsonValue({ maxDepth: 2 }) }),
  // deep nesting: JSON.parse accepts it, but a recursive printer of the bad value overflows the stack
  fc.record({
    kind: fc.constant('deep' as const),
    pick: fc.nat(),
    field: fc.constantFrom('dtype', 'shape', 'data_offsets', '__entry__', '__metadata__'),
    depth: fc.integer({ min: 1, max: 60_000 }),
  }),
);

type HeaderEdit = typeof headerEditArb extends fc.Arbitrary<infer E> ? E : never;

function editHeader(file: Uint8Array, edit: HeaderEdit, pad: number): Uint8Array {
  const n = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + n))) as Record<string, unknown>;
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  const target = names.length > 0 && 'pick' in edit ? names[edit.pick % names.length]! : undefined;
  const entry = target === undefined ? undefined : (header[target] as Record<string, unknown>);
  if (edit.kind === 'field' && entry) entry[edit.field] = edit.value;
  if (edit.kind === 'offset' && entry) {
    const offs = entry.data_offsets as number[];
    offs[edit.which] = (offs[edit.which] ?? 0) + edit.delta;
  }
  if (edit.kind === 'delete' && target !== undefined) delete header[target];
  if (edit.kind === 'add') header[edit.name] = edit.entry;
  if (edit.kind === 'metadata') header.__metadata__ = edit.value;
  const DEEP = '\u0000deep';
  if (edit.kind === 'deep') {
    if (edit.field === '__metadata__') header.__metadata__ = DEEP;
    else if (edit.field === '__entry__' || !entry) header[target ?? 'x'] = DEEP;
    else entry[edit.field] = DEEP;
  }
  let text = JSON.stringify(header);
  if (edit.kind === 'deep') {
    text = text.replace(JSON.stringify(DEEP), `${'['.repeat(edit.depth)}${']'.repeat(edit.depth)}`);
  }
  const json = new TextEncoder().encode(`${text}${' '.repeat(pad)}`);
  const data = file.subarray(8 + n);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

/** A header synthesized from scratch: entries with plausible or random fields over a random data section. */
const synthesizedArb = fc
  .tuple(
    fc.uniqueArray(
      fc.tuple(
        fc.string({ maxLength: 3 }),
        fc.oneof(
          fc.record({
            dtype: fc.constantFrom(...DTYPES),
            shape: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }),
            data_offsets: fc.tuple(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 40 })),
          }),
          fc.jsonValue({ maxDepth: 2 }),
        ),
      ),
      { selector: ([k]) => k, maxLength: 4 },
    ),
    fc.integer({ min: 0, max: 48 }),
    fc.boolean(),
  )
  .map(([entries, dataLength, text]) => {
    const json = new TextEncoder().encode(
      text ? JSON.stringify(Object.fromEntries(entries)) : JSON.stringify(entries),
    );
    const out = new Uint8Array(8 + json.length + dataLength);
    new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
    out.set(json, 8);
    for (let i = 8 + json.length; i < out.length; i++) out[i] = i & 0xff;
    return out;
  });

describe('fuzz: safetensors', () => {
  it(
    'a synthesized file (any names, dtypes, shapes incl. 0-d and 0-size) round-trips exactly',
    async () => {
      await fc.assert(
        fc.asyncProperty(tensorsArb, metadataArb, fc.constantFrom('buffer', 'blob'), (tensors, meta, via) =>
          timed(async () => {
            const bytes = serializeSafetensors(tensors, meta);
            const { src, file, tensors: got, error } = await openAndReadAll(bytes, via as 'buffer' | 'blob');
            if (error !== undefined) throw error;
            expectSameTensors(got!, tensors);
            expect(file!.metadata).toEqual(meta ?? {});
            // reading a valid file reads each byte exactly once
            expect(src.requested).toBe(bytes.length);
            expectReadsInside(src, bytes.length);
            expect(src.closed).toBe(true);
          }),
        ),
        fuzzParams(),
      );
    },
    propertyTimeout(),
  );

  it(
    'writeSafetensorsFile + openSafetensors round-trip through the disk',
    async () => {
      await withTempDir(async (dir) => {
        const path = join(dir, 'x.safetensors');
        await fc.assert(
          fc.asyncProperty(tensorsArb, metadataArb, (tensors, meta) =>
            timed(async () => {
              await writeSafetensorsFile(path, tensors, meta);
              const f = await openSafetensors(path);
              const got = new Map<string, HostTensor>();
              for (const name of f.names()) got.set(name, await f.read(name));
              await f.close();
              expectSameTensors(got, tensors);
              expect(f.metadata).toEqual(meta ?? {});
            }),
          ),
          fuzzParams(10),
        );
      });
    },
    propertyTimeout(10),
  );

  it(
    'byte flips, truncations, extensions and header-length corruption give a typed error or an exact read',
    async () => {
      const codes = new Map<string, number>();
      await fc.assert(
        fc.asyncProperty(
          tensorsArb,
          fc.array(mutationArb, { minLength: 1, maxLength: 3 }),
          fc.constantFrom('buffer', 'blob'),
          (tensors, mutations, via) =>
            timed(async () => {
              const bytes = mutations.reduce(mutate, serializeSafetensors(tensors, { format: 'pt' }));
              const outcome = await checkAnyFile(bytes, via as 'buffer' | 'blob');
              codes.set(outcome, (codes.get(outcome) ?? 0) + 1);
            }),
        ),
        fuzzParams(),
      );
      // the mutations must actually reach the validator, not only one early check
      if (process.env.QF_FUZZ_DEBUG) console.log(codes);
      if (FUZZ_RUNS >= 100) expect(codes.size).toBeGreaterThanOrEqual(4);
    },
    propertyTimeout(),
  );

  it(
    'structural header edits (fields, offsets, entries, metadata) give a typed error or an exact read',
    async () => {
      const codes = new Set<string>();
      await fc.assert(
        fc.asyncProperty(tensorsArb, headerEditArb, fc.integer({ min: 0, max: 9 }), (tensors, edit, pad) =>
          timed(async () => {
            const bytes = editHeader(serializeSafetensors(tensors), edit, pad);
            codes.add(await checkAnyFile(bytes, 'buffer'));
          }),
        ),
        fuzzParams(),
      );
      if (process.env.QF_FUZZ_DEBUG) console.log(codes);
      if (FUZZ_RUNS >= 100) {
        expect(codes.has('ok')).toBe(true);
        expect(codes.size).toBeGreaterThanOrEqual(4);
      }
    },
    propertyTimeout(),
  );

  it(
    'synthesized headers and random bytes give a typed error or an exact read',
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.oneof(synthesizedArb, fc.uint8Array({ maxLength: 64 })), async (bytes) => {
          await timed(() => checkAnyFile(bytes, 'buffer'));
        }),
        fuzzParams(),
      );
    },
    propertyTimeout(),
  );

  it(
    'mutated files on disk: typed error (file handle closed) or exact read',
    async () => {
      await withTempDir(async (dir) => {
        const path = join(dir, 'm.safetensors');
        await fc.assert(
          fc.asyncProperty(tensorsArb, fc.array(mutationArb, { minLength: 1, maxLength: 2 }), (tensors, ms) =>
            timed(async () => {
              const bytes = ms.reduce(mutate, serializeSafetensors(tensors));
              await writeFile(path, bytes);
              const src = spy(await fileSource(path));
              let file: SafetensorsFile;
              try {
                file = await SafetensorsFile.open(src);
              } catch (err) {
                expectTypedError(err, SAFETENSORS_CODES);
                expect(src.closed).toBe(true);
                expectReadsInside(src, bytes.length);
                return;
              }
              for (const name of file.names()) {
                const info = file.info(name)!;
                const at = file.dataStart + info.dataOffsets[0];
                expect(bytesOf(await file.read(name))).toEqual(bytes.subarray(at, at + info.byteLength));
              }
              await file.close();
              expect(src.closed).toBe(true);
              expectReadsInside(src, bytes.length);
              await unlink(path);
            }),
          ),
          fuzzParams(10),
        );
      });
    },
    propertyTimeout(10),
  );

  it('deeply nested JSON in any header field is a typed error, not a stack overflow', async () => {
    const deep = `${'['.repeat(200_000)}${']'.repeat(200_000)}`;
    const headers = [
      `{"a": ${deep}}`,
      `{"a": {"dtype": ${deep}, "shape": [], "data_offsets": [0, 4]}}`,
      `{"a": {"dtype": "F32", "shape": ${deep}, "data_offsets": [0, 4]}}`,
      `{"a": {"dtype": "F32", "shape": [], "data_offsets": ${deep}}}`,
      `{"__metadata__": ${deep}}`,
      `{"__metadata__": {"k": ${deep}}}`,
    ];
    for (const h of headers) {
      const json = new TextEncoder().encode(h);
      const bytes = new Uint8Array(8 + json.length + 4);
      new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
      bytes.set(json, 8);
      const err = await SafetensorsFile.open(bytes).catch((e: unknown) => e);
      expectTypedError(err, SAFETENSORS_CODES);
      expect(err.message.length).toBeLessThan(400);
    }
  });

  it('a shape whose element count overflows before a 0 dim is rejected at open, not at read', async () => {
    const big = Number.MAX_SAFE_INTEGER;
    const header = JSON.stringify({
      a: { dtype: 'F32', shape: [big, big, big, big, big, big, big, 0], data_offsets: [0, 0] },
    });
    const json = new TextEncoder().encode(header);
    const bytes = new Uint8Array(8 + json.length);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
    bytes.set(json, 8);
    const err = await SafetensorsFile.open(bytes).catch((e: unknown) => e);
    expectTypedError(err, ['SAFETENSORS_SIZE_MISMATCH']);
    // the same zero-size tensor with the 0 first has an exact count (0) and reads back
    const ok = JSON.stringify({ a: { dtype: 'F32', shape: [0, big, big], data_offsets: [0, 0] } });
    const okJson = new TextEncoder().encode(ok);
    const okBytes = new Uint8Array(8 + okJson.length);
    new DataView(okBytes.buffer).setBigUint64(0, BigInt(okJson.length), true);
    okBytes.set(okJson, 8);
    const f = await SafetensorsFile.open(okBytes);
    expect((await f.read('a')).data.length).toBe(0);
  });
});
