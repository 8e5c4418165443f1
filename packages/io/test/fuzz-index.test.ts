/**
 * Property-based tests of the sharded checkpoint reader (`model.safetensors.index.json` + shards).
 * Cases per property: `QF_FUZZ_RUNS` (default 200); `pnpm fuzz` runs 20 000.
 *
 * Contract: a random, mutated or hostile index (and mutated shards) either opens and reads every
 * listed tensor exactly from its shard, or fails with a typed QfError; no shard is opened outside
 * the checkpoint directory, and every shard opened is closed again (no leaked handles).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type HostTensor,
  SafetensorsError,
  SafetensorsFile,
  ShardedCheckpoint,
  bufferSource,
  isSafeShardName,
  parseShardIndex,
  planShards,
  serializeSafetensors,
} from '../src/index.js';
import { openCheckpointDir } from '../src/node/index.js';
import {
  SAFETENSORS_CODES,
  type SpySource,
  bytesOf,
  expectReadsInside,
  expectTypedError,
  fuzzParams,
  mutate,
  mutationArb,
  propertyTimeout,
  spy,
  tensorsArb,
  timed,
} from './fixtures/fuzz.js';
import { withTempDir } from './helpers.js';

const INDEX_CODES = [
  'SAFETENSORS_INDEX_BAD_JSON',
  'SAFETENSORS_INDEX_NO_WEIGHT_MAP',
  'SAFETENSORS_INDEX_BAD_ENTRY',
] as const;
const OPEN_CODES = [
  ...SAFETENSORS_CODES,
  ...INDEX_CODES,
  'SAFETENSORS_INDEX_TENSOR_MISSING',
  'SAFETENSORS_SHARD_MISSING',
  'SAFETENSORS_SHARD_OPEN_FAILED',
] as const;

/** A checkpoint split into several shards in memory: shard files and the index JSON. */
const shardedArb = fc.tuple(tensorsArb, fc.integer({ min: 1, max: 64 })).map(([tensors, maxShardBytes]) => {
  const plan = planShards(tensors, maxShardBytes);
  const files = new Map<string, Uint8Array>();
  for (const { file, names } of plan.files) {
    files.set(file, serializeSafetensors(Object.fromEntries(names.map((n) => [n, tensors[n]!]))));
  }
  const index = plan.index ?? {
    metadata: { total_size: 0 },
    weight_map: Object.fromEntries(Object.keys(tensors).map((n) => [n, 'model.safetensors'])),
  };
  return { tensors, files, index };
});

/** At least two shards (so a directory holds an index and no model.safetensors). */
const multiShardArb = shardedArb.filter(({ files }) => !files.has('model.safetensors'));

/** Hostile or wrong shard file names for an index entry. */
const badFileArb = fc.oneof(
  fc.constantFrom(
    'missing.safetensors',
    '../outside.safetensors',
    '/etc/passwd',
    'a\\b.safetensors',
    'C:x.safetensors',
    '',
    '.',
    './model.safetensors',
    'sub//x',
    'x\u0000y',
  ),
  fc.string({ maxLength: 6 }),
  fc.jsonValue({ maxDepth: 2 }),
);

const indexEditArb = fc.oneof(
  fc.record({ kind: fc.constant('retarget' as const), pick: fc.nat(), file: badFileArb }),
  fc.record({ kind: fc.constant('swap' as const), pick: fc.nat(), other: fc.nat() }),
  fc.record({ kind: fc.constant('delete' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('add' as const), name: fc.string({ maxLength: 4 }), other: fc.nat() }),
  fc.record({ kind: fc.constant('weight_map' as const), value: fc.jsonValue({ maxDepth: 2 }) }),
  fc.record({ kind: fc.constant('root' as const), value: fc.jsonValue({ maxDepth: 2 }) }),
  fc.record({ kind: fc.constant('deep' as const), depth: fc.integer({ min: 1, max: 60_000 }) }),
  fc.record({ kind: fc.constant('text' as const), mutation: mutationArb }),
  fc.record({
    kind: fc.constant('steal' as const),
    file: fc.constantFrom('../outside.safetensors', '/../outside.safetensors', 'x/../../outside.safetensors'),
  }),
);

type IndexEdit = typeof indexEditArb extends fc.Arbitrary<infer E> ? E : never;

/** The index text after an edit (the JSON object, or raw text for text-level and deep edits). */
function editIndex(index: { weight_map: Record<string, string> }, shards: string[], edit: IndexEdit): string {
  const copy = JSON.parse(JSON.stringify(index)) as Record<string, unknown>;
  const map = copy.weight_map as Record<string, unknown>;
  const names = Object.keys(map);
  const pick = (i: number) => (names.length === 0 ? undefined : names[i % names.length]);
  switch (edit.kind) {
    case 'retarget': {
      const n = pick(edit.pick);
      if (n !== undefined) map[n] = edit.file;
      break;
    }
    case 'swap': {
      const n = pick(edit.pick);
      if (n !== undefined && shards.length > 0) map[n] = shards[edit.other % shards.length];
      break;
    }
    case 'delete': {
      const n = pick(edit.pick);
      if (n !== undefined) delete map[n];
      break;
    }
    case 'add':
      if (shards.length > 0) map[edit.name] = shards[edit.other % shards.length];
      break;
    case 'steal':
      map.stolen = edit.file;
      break;
    case 'weight_map':
      copy.weight_map = edit.value;
      break;
    case 'root':
      return JSON.stringify(edit.value);
    case 'deep':
      return `{"weight_map": {"a": ${'['.repeat(edit.depth)}${']'.repeat(edit.depth)}}}`;
    case 'text':
      return new TextDecoder().decode(mutate(new TextEncoder().encode(JSON.stringify(copy)), edit.mutation));
  }
  return JSON.stringify(copy);
}

/** Opens shards from memory through instrumented sources; unknown names fail like a missing file. */
function memoryShards(files: ReadonlyMap<string, Uint8Array>) {
  const opened: { file: string; src: SpySource }[] = [];
  const asked: string[] = [];
  const openShard = async (file: string) => {
    asked.push(file);
    const bytes = files.get(file);
    if (bytes === undefined) {
      throw Object.assign(new Error(`ENOENT: no such file '${file}'`), { code: 'ENOENT' });
    }
    const src = spy(bufferSource(bytes));
    opened.push({ file, src });
    return SafetensorsFile.open(src);
  };
  return { openShard, opened, asked };
}

/** Typed error with every shard closed, or an exact read of every listed tensor. */
async function checkSharded(indexText: string, files: ReadonlyMap<string, Uint8Array>): Promise<string> {
  const { openShard, opened, asked } = memoryShards(files);
  let ckpt: ShardedCheckpoint;
  try {
    ckpt = await ShardedCheckpoint.open(indexText, openShard);
  } catch (err) {
    expectTypedError(err, OPEN_CODES);
    expect(err).toBeInstanceOf(SafetensorsError);
    for (const { src } of opened) expect(src.closed).toBe(true);
    for (const file of asked) expect(isSafeShardName(file)).toBe(true);
    for (const { file, src } of opened) expectReadsInside(src, files.get(file)!.length);
    return err.code;
  }
  for (const file of asked) expect(isSafeShardName(file)).toBe(true);
  const index = parseShardIndex(indexText);
  expect(ckpt.names()).toEqual([...index.weightMap.keys()]);
  for (const name of ckpt.names()) {
    const file = ckpt.shardOf(name)!;
    expect(file).toBe(index.weightMap.get(name));
    const info = ckpt.info(name)!;
    const shard = await SafetensorsFile.open(files.get(file)!);
    const at = shard.dataStart + info.dataOffsets[0];
    expect(bytesOf(await ckpt.read(name))).toEqual(files.get(file)!.subarray(at, at + info.byteLength));
  }
  await ckpt.close();
  for (const { file, src } of opened) {
    expect(src.closed).toBe(true);
    expectReadsInside(src, files.get(file)!.length);
  }
  return 'ok';
}

function expectSame(got: HostTensor, want: HostTensor): void {
  expect(got.dtype).toBe(want.dtype);
  expect(got.shape).toEqual(want.shape);
  expect(bytesOf(got)).toEqual(bytesOf(want));
}

describe('fuzz: sharded index', () => {
  it(
    'parseShardIndex on any JSON value or text: a ShardIndex of safe names, or a typed error',
    async () => {
      fc.assert(
        fc.property(
          fc.oneof(
            fc.jsonValue({ maxDepth: 3 }),
            fc.string({ maxLength: 40 }),
            fc.record({
              weight_map: fc.dictionary(fc.string({ maxLength: 4 }), fc.jsonValue({ maxDepth: 1 })),
            }),
            fc.record({ weight_map: fc.dictionary(fc.string({ maxLength: 4 }), badFileArb) }),
          ),
          (json) => {
            let index: ReturnType<typeof parseShardIndex>;
            try {
              index = parseShardIndex(json);
            } catch (err) {
              expectTypedError(err, INDEX_CODES);
              return;
            }
            for (const file of index.weightMap.values()) {
              expect(isSafeShardName(file)).toBe(true);
              expect(index.shards).toContain(file);
            }
            expect(new Set(index.shards).size).toBe(index.shards.length);
          },
        ),
        fuzzParams(),
      );
    },
    propertyTimeout(),
  );

  it(
    'a planned sharded checkpoint round-trips exactly',
    async () => {
      await fc.assert(
        fc.asyncProperty(shardedArb, ({ tensors, files, index }) =>
          timed(async () => {
            const { openShard, opened } = memoryShards(files);
            const ckpt = await ShardedCheckpoint.open(JSON.stringify(index), openShard);
            expect(ckpt.names().sort()).toEqual(Object.keys(tensors).sort());
            for (const [name, t] of Object.entries(tensors)) expectSame(await ckpt.read(name), t);
            await ckpt.close();
            for (const { src } of opened) expect(src.closed).toBe(true);
          }),
        ),
        fuzzParams(),
      );
    },
    propertyTimeout(),
  );

  it(
    'mutated indexes and shards: exact reads or a typed error, shards only inside the directory, none leaked',
    async () => {
      const outcomes = new Set<string>();
      await fc.assert(
        fc.asyncProperty(
          shardedArb,
          indexEditArb,
          fc.option(fc.tuple(fc.nat(), mutationArb), { nil: undefined }),
          ({ files, index }, edit, shardEdit) =>
            timed(async () => {
              const shards = [...files.keys()];
              const text = editIndex(index, shards, edit);
              const mutated = new Map(files);
              if (shardEdit !== undefined && shards.length > 0) {
                const file = shards[shardEdit[0] % shards.length]!;
                mutated.set(file, mutate(files.get(file)!, shardEdit[1]));
              }
              outcomes.add(await checkSharded(text, mutated));
            }),
        ),
        fuzzParams(),
      );
      expect(outcomes.size).toBeGreaterThan(1);
    },
    propertyTimeout(),
  );

  it(
    'on disk: openCheckpointDir with a hostile index never opens a file outside the directory',
    async () => {
      await withTempDir(async (root) => {
        // a valid shard outside the checkpoint directory, which no index may reach
        await writeFile(
          join(root, 'outside.safetensors'),
          serializeSafetensors({ stolen: { dtype: 'F32', shape: [1], data: new Float32Array([7]) } }),
        );
        let n = 0;
        await fc.assert(
          fc.asyncProperty(multiShardArb, indexEditArb, ({ files, index }, edit) =>
            timed(async () => {
              const dir = join(root, `ckpt${n++}`);
              await mkdir(dir);
              await writeFile(join(dir, 'config.json'), '{}');
              for (const [file, bytes] of files) await writeFile(join(dir, file), bytes);
              await writeFile(
                join(dir, 'model.safetensors.index.json'),
                editIndex(index, [...files.keys()], edit),
              );
              let opened: Awaited<ReturnType<typeof openCheckpointDir>>;
              try {
                opened = await openCheckpointDir(dir);
              } catch (err) {
                expectTypedError(err);
                return;
              }
              for (const name of opened.checkpoint.names()) {
                expect(name).not.toBe('stolen');
                await opened.checkpoint.read(name);
              }
              await opened.checkpoint.close();
            }),
          ),
          fuzzParams(10),
        );
      });
    },
    propertyTimeout(10),
  );
});
