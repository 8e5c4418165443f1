import { describe, expect, it } from 'vitest';
import {
  type ByteSource,
  MAX_HEADER_BYTES,
  SafetensorsError,
  SafetensorsFile,
  bufferSource,
} from '../src/index.js';
import { rawSafetensors, rejectsWithCode } from './helpers.js';

const ok = (dtype = 'F32', shape: number[] = [2], offsets: [number, number] = [0, 8]) => ({
  dtype,
  shape,
  data_offsets: offsets,
});

/** A source that records every read, to prove nothing is read or allocated past a bad header. */
function spySource(
  bytes: Uint8Array,
  size = bytes.length,
): ByteSource & { reads: [number, number][]; closed: boolean } {
  const inner = bufferSource(bytes);
  const spy = {
    size,
    reads: [] as [number, number][],
    closed: false,
    async read(offset: number, length: number) {
      spy.reads.push([offset, length]);
      return inner.read(offset, length);
    },
    async close() {
      spy.closed = true;
    },
  };
  return spy;
}

async function expectCode(bytes: Uint8Array, code: string, mention?: string): Promise<void> {
  const e = await rejectsWithCode(SafetensorsFile.open(bytes), code);
  expect(e).toBeInstanceOf(SafetensorsError);
  if (mention !== undefined) expect(e.message).toContain(mention);
}

describe('malformed safetensors', () => {
  it('a file under 8 bytes is SAFETENSORS_TRUNCATED', async () => {
    await expectCode(new Uint8Array(0), 'SAFETENSORS_TRUNCATED');
    await expectCode(new Uint8Array(7), 'SAFETENSORS_TRUNCATED');
  });

  it('a header length past the end of the file is SAFETENSORS_HEADER_OUT_OF_BOUNDS, checked before reading it', async () => {
    const bytes = rawSafetensors({}, 0, 1000n);
    const src = spySource(bytes);
    await rejectsWithCode(SafetensorsFile.open(src), 'SAFETENSORS_HEADER_OUT_OF_BOUNDS');
    expect(src.reads).toEqual([[0, 8]]);
    expect(src.closed).toBe(true);
  });

  it('a huge header length (2^50, 2^64-1) is SAFETENSORS_HEADER_TOO_LARGE and is never allocated', async () => {
    for (const n of [2n ** 50n, 2n ** 64n - 1n, BigInt(MAX_HEADER_BYTES + 1)]) {
      // claim a file big enough to hold it, so only the size limit can stop it
      const src = spySource(rawSafetensors({}, 0, n), Number.MAX_SAFE_INTEGER);
      await rejectsWithCode(SafetensorsFile.open(src), 'SAFETENSORS_HEADER_TOO_LARGE');
      expect(src.reads).toEqual([[0, 8]]);
    }
  });

  it('bad UTF-8, bad JSON and non-object JSON are rejected', async () => {
    const badUtf8 = rawSafetensors('{"a":1}');
    badUtf8[10] = 0xff;
    await expectCode(badUtf8, 'SAFETENSORS_BAD_UTF8');
    await expectCode(rawSafetensors('{"x": {"dtype": "F32",'), 'SAFETENSORS_BAD_JSON');
    await expectCode(rawSafetensors('{} trailing'), 'SAFETENSORS_BAD_JSON');
    await expectCode(rawSafetensors('[1, 2]'), 'SAFETENSORS_HEADER_NOT_OBJECT');
    await expectCode(rawSafetensors('"str"'), 'SAFETENSORS_HEADER_NOT_OBJECT');
    await expectCode(rawSafetensors('null'), 'SAFETENSORS_HEADER_NOT_OBJECT');
    await expectCode(rawSafetensors(''), 'SAFETENSORS_HEADER_NOT_OBJECT');
  });

  it('accepts trailing space padding after the JSON object', async () => {
    const f = await SafetensorsFile.open(rawSafetensors(`${JSON.stringify({ x: ok() })}      `, 8));
    expect(f.names()).toEqual(['x']);
  });

  it('__metadata__ must be a string -> string map', async () => {
    await expectCode(
      rawSafetensors({ __metadata__: { a: 1 } }),
      'SAFETENSORS_BAD_METADATA',
      '__metadata__.a',
    );
    await expectCode(rawSafetensors({ __metadata__: ['a'] }), 'SAFETENSORS_BAD_METADATA');
    await expectCode(rawSafetensors({ __metadata__: 'x' }), 'SAFETENSORS_BAD_METADATA');
  });

  it('an entry that is not an object is SAFETENSORS_BAD_ENTRY naming it', async () => {
    await expectCode(rawSafetensors({ w: 5 }), 'SAFETENSORS_BAD_ENTRY', '"w"');
  });

  it('an unknown dtype is SAFETENSORS_UNKNOWN_DTYPE naming the tensor', async () => {
    await expectCode(
      rawSafetensors({ 'q.weight': ok('F8_E4M3', [8]) }, 8),
      'SAFETENSORS_UNKNOWN_DTYPE',
      '"q.weight"',
    );
    await expectCode(rawSafetensors({ w: ok('f32') }, 8), 'SAFETENSORS_UNKNOWN_DTYPE');
    await expectCode(
      rawSafetensors({ w: { shape: [2], data_offsets: [0, 8] } }, 8),
      'SAFETENSORS_UNKNOWN_DTYPE',
    );
  });

  it('negative, fractional or non-numeric shapes are SAFETENSORS_BAD_SHAPE', async () => {
    await expectCode(rawSafetensors({ w: ok('F32', [-2]) }, 8), 'SAFETENSORS_BAD_SHAPE', '"w"');
    await expectCode(rawSafetensors({ w: ok('F32', [1.5]) }, 8), 'SAFETENSORS_BAD_SHAPE');
    await expectCode(rawSafetensors({ w: { ...ok(), shape: ['2'] } }, 8), 'SAFETENSORS_BAD_SHAPE');
    await expectCode(rawSafetensors({ w: { ...ok(), shape: 2 } }, 8), 'SAFETENSORS_BAD_SHAPE');
  });

  it('malformed data_offsets are SAFETENSORS_BAD_OFFSETS', async () => {
    await expectCode(rawSafetensors({ w: ok('F32', [2], [8, 0]) }, 8), 'SAFETENSORS_BAD_OFFSETS', '"w"');
    await expectCode(rawSafetensors({ w: { ...ok(), data_offsets: [0] } }, 8), 'SAFETENSORS_BAD_OFFSETS');
    await expectCode(
      rawSafetensors({ w: { ...ok(), data_offsets: [0, 8.5] } }, 8),
      'SAFETENSORS_BAD_OFFSETS',
    );
    await expectCode(rawSafetensors({ w: { ...ok(), data_offsets: [-1, 7] } }, 8), 'SAFETENSORS_BAD_OFFSETS');
  });

  it('offsets past the data section are SAFETENSORS_OFFSET_OUT_OF_RANGE', async () => {
    await expectCode(
      rawSafetensors({ w: ok('F32', [2], [0, 8]) }, 4),
      'SAFETENSORS_OFFSET_OUT_OF_RANGE',
      '"w"',
    );
    await expectCode(
      rawSafetensors({ w: ok('F32', [2 ** 40], [0, 2 ** 42]) }, 8),
      'SAFETENSORS_OFFSET_OUT_OF_RANGE',
    );
  });

  it('overlapping tensors are SAFETENSORS_OVERLAP naming both', async () => {
    const e = await rejectsWithCode(
      SafetensorsFile.open(rawSafetensors({ a: ok('F32', [2], [0, 8]), b: ok('F32', [2], [4, 12]) }, 12)),
      'SAFETENSORS_OVERLAP',
    );
    expect(e.message).toContain('"a"');
    expect(e.message).toContain('"b"');
    await expectCode(
      rawSafetensors({ a: ok('F32', [2], [0, 8]), b: ok('F32', [2], [0, 8]) }, 8),
      'SAFETENSORS_OVERLAP',
    );
  });

  it('gaps (at the start or between tensors) are SAFETENSORS_GAP; unused trailing bytes are SAFETENSORS_TRAILING_BYTES', async () => {
    await expectCode(rawSafetensors({ a: ok('F32', [2], [4, 12]) }, 12), 'SAFETENSORS_GAP', '"a"');
    await expectCode(
      rawSafetensors({ a: ok('F32', [2], [0, 8]), b: ok('F32', [1], [12, 16]) }, 16),
      'SAFETENSORS_GAP',
      '"b"',
    );
    await expectCode(rawSafetensors({ a: ok('F32', [2], [0, 8]) }, 9), 'SAFETENSORS_TRAILING_BYTES');
    await expectCode(rawSafetensors({}, 1), 'SAFETENSORS_TRAILING_BYTES');
  });

  it('shape x dtype size != byte length is SAFETENSORS_SIZE_MISMATCH naming the tensor', async () => {
    await expectCode(rawSafetensors({ w: ok('F32', [3], [0, 8]) }, 8), 'SAFETENSORS_SIZE_MISMATCH', '"w"');
    await expectCode(rawSafetensors({ w: ok('F16', [2], [0, 8]) }, 8), 'SAFETENSORS_SIZE_MISMATCH');
    // a product that overflows is a mismatch, not a crash
    await expectCode(
      rawSafetensors({ w: ok('F32', [2 ** 40, 2 ** 40], [0, 8]) }, 8),
      'SAFETENSORS_SIZE_MISMATCH',
    );
  });

  it('a valid header never reads tensor data until asked', async () => {
    const bytes = rawSafetensors({ a: ok('F32', [2], [0, 8]) }, 8);
    const src = spySource(bytes);
    const f = await SafetensorsFile.open(src);
    expect(src.reads.length).toBe(2);
    await f.read('a');
    expect(src.reads.length).toBe(3);
    await f.close();
    expect(src.closed).toBe(true);
    await rejectsWithCode(f.read('a'), 'SOURCE_CLOSED');
  });

  it('a file truncated after opening gives SOURCE_SHORT_READ, not garbage', async () => {
    const bytes = rawSafetensors({ a: ok('F32', [2], [0, 8]) }, 8);
    const lying: ByteSource = {
      size: bytes.length,
      read: async (o, l) => bytes.subarray(o, Math.min(o + l, bytes.length - 4)),
    };
    const f = await SafetensorsFile.open(lying);
    await rejectsWithCode(f.read('a'), 'SOURCE_SHORT_READ');
  });
});
