import { describe, expect, it } from 'vitest';
import {
  type DType,
  DTYPES,
  DTYPE_BYTES,
  type HostTensor,
  SafetensorsFile,
  TensorError,
  f32ArrayToBf16,
  f32ArrayToF16,
  hostTensor,
  parseSafetensorsHeader,
  planSafetensors,
  serializeSafetensors,
} from '../src/index.js';
import { rejectsWithCode, throwsWithCode } from './helpers.js';

function sample(dtype: DType, shape: number[]): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const vals = Array.from({ length: n }, (_, i) => (i % 7) - 3 + i / 16);
  switch (dtype) {
    case 'F32':
      return hostTensor(dtype, shape, Float32Array.from(vals));
    case 'F16':
      return hostTensor(dtype, shape, f32ArrayToF16(vals));
    case 'BF16':
      return hostTensor(dtype, shape, f32ArrayToBf16(vals));
    case 'F64':
      return hostTensor(
        dtype,
        shape,
        Float64Array.from(vals, (v) => v + 1e-12),
      );
    case 'I64':
      return hostTensor(
        dtype,
        shape,
        BigInt64Array.from(vals, (_, i) => BigInt(i) * 10n ** 15n - 7n),
      );
    case 'I32':
      return hostTensor(
        dtype,
        shape,
        Int32Array.from(vals, (_, i) => i * 100003 - 50),
      );
    case 'I16':
      return hostTensor(
        dtype,
        shape,
        Int16Array.from(vals, (_, i) => i * 37 - 300),
      );
    case 'I8':
      return hostTensor(
        dtype,
        shape,
        Int8Array.from(vals, (_, i) => (i % 200) - 100),
      );
    case 'U8':
      return hostTensor(
        dtype,
        shape,
        Uint8Array.from(vals, (_, i) => i % 256),
      );
    default:
      return hostTensor(
        dtype,
        shape,
        Uint8Array.from(vals, (_, i) => i % 2),
      );
  }
}

describe('safetensors round trip', () => {
  for (const dtype of DTYPES) {
    it(`${dtype}: matrix, 0-d scalar and empty tensors`, async () => {
      const tensors = {
        'a.weight': sample(dtype, [3, 5]),
        scalar: sample(dtype, []),
        empty: sample(dtype, [0, 4]),
        odd: sample('U8', [3]), // forces unaligned offsets for whatever follows in a naive layout
      };
      const bytes = serializeSafetensors(tensors);
      const file = await SafetensorsFile.open(bytes);
      expect(new Set(file.names())).toEqual(new Set(Object.keys(tensors)));
      for (const [name, t] of Object.entries(tensors)) {
        const info = file.info(name)!;
        expect(info.dtype).toBe(t.dtype);
        expect(info.shape).toEqual(t.shape);
        const back = await file.read(name);
        expect(back.dtype).toBe(t.dtype);
        expect(back.shape).toEqual(t.shape);
        expect(back.data).toEqual(t.data);
        expect(back.data.byteOffset % back.data.BYTES_PER_ELEMENT).toBe(0);
      }
      expect(Object.keys(await file.readAll()).sort()).toEqual(Object.keys(tensors).sort());
      await file.close();
    });
  }

  it('round-trips metadata and writes a space-padded, 8-aligned, deterministic header', async () => {
    const tensors = { b: sample('F16', [2]), a: sample('F32', [3]), c: sample('I8', [1]) };
    const metadata = { format: 'pt', note: 'héllo "quoted"' };
    const bytes = serializeSafetensors(tensors, metadata);
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const headerText = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(headerText.trimEnd().endsWith('}')).toBe(true);
    expect(/^[^ ]*\}? *$/.test(headerText.slice(headerText.lastIndexOf('}')))).toBe(true);
    expect(Object.keys(JSON.parse(headerText))[0]).toBe('__metadata__');
    // wider dtypes first, then by name
    expect(planSafetensors(tensors).tensors.map((t) => t.name)).toEqual(['a', 'b', 'c']);
    expect(serializeSafetensors({ c: tensors.c, a: tensors.a, b: tensors.b }, metadata)).toEqual(bytes);
    const file = await SafetensorsFile.open(bytes);
    expect(file.metadata).toEqual(metadata);
    expect(parseSafetensorsHeader(headerText, bytes.length - 8 - n).tensors.map((t) => t.name)).toEqual([
      'a',
      'b',
      'c',
    ]);
    // every tensor is naturally aligned in the file
    for (const name of file.names()) {
      const info = file.info(name)!;
      expect((file.dataStart + info.dataOffsets[0]) % DTYPE_BYTES[info.dtype]).toBe(0);
    }
  });

  it('copies data out of unaligned offsets into aligned arrays that do not alias the source', async () => {
    const bytes = serializeSafetensors({ x: sample('F32', [4]) });
    const shifted = new Uint8Array(bytes.length + 3);
    shifted.set(bytes, 3);
    const file = await SafetensorsFile.open(shifted.subarray(3));
    const t = await file.read('x');
    expect(t.data).toEqual(sample('F32', [4]).data);
    (t.data as Float32Array)[0] = 123;
    expect((await file.read('x')).data[0]).not.toBe(123);
  });

  it('converts F16/BF16/F64 to F32 with float32: true and leaves ints alone', async () => {
    const tensors = {
      h: sample('F16', [4]),
      b: sample('BF16', [4]),
      d: sample('F64', [4]),
      i: sample('I64', [2]),
    };
    const file = await SafetensorsFile.open(serializeSafetensors(tensors));
    for (const name of ['h', 'b', 'd']) {
      const t = await file.read(name, { float32: true });
      expect(t.dtype).toBe('F32');
      expect(t.data).toBeInstanceOf(Float32Array);
    }
    expect(Array.from((await file.read('h', { float32: true })).data as Float32Array)).toEqual(
      [0, 1, 2, 3].map((i) => (i % 7) - 3 + i / 16),
    );
    expect((await file.read('i', { float32: true })).dtype).toBe('I64');
  });

  it('reading an unknown name throws TENSOR_MISSING naming it', async () => {
    const file = await SafetensorsFile.open(serializeSafetensors({ x: sample('F32', [1]) }));
    const e = await rejectsWithCode(file.read('nope'), 'TENSOR_MISSING');
    expect(e).toBeInstanceOf(TensorError);
    expect(e.message).toContain('"nope"');
    expect(file.info('nope')).toBeUndefined();
  });

  it('an empty file (no tensors) round-trips', async () => {
    const file = await SafetensorsFile.open(serializeSafetensors({}));
    expect(file.names()).toEqual([]);
  });

  it('keeps odd tensor names such as __proto__ as plain data', async () => {
    const tensors = Object.fromEntries([
      ['__proto__', sample('F32', [2])],
      ['constructor', sample('I8', [1])],
    ]);
    const file = await SafetensorsFile.open(serializeSafetensors(tensors));
    expect(file.names().sort()).toEqual(['__proto__', 'constructor']);
    const all = await file.readAll();
    expect(Object.keys(all).sort()).toEqual(['__proto__', 'constructor']);
  });

  it('the writer validates tensors and metadata before producing anything', () => {
    const bad = { dtype: 'F32', shape: [2, 2], data: new Float32Array(3) } as HostTensor;
    const e = throwsWithCode(() => serializeSafetensors({ 'w.weight': bad }), 'TENSOR_SHAPE');
    expect(e.message).toContain('w.weight');
    throwsWithCode(
      () =>
        serializeSafetensors({
          x: { dtype: 'F16', shape: [1], data: new Float32Array(1) } as unknown as HostTensor,
        }),
      'TENSOR_DTYPE',
    );
    throwsWithCode(
      () => serializeSafetensors({ __metadata__: sample('F32', [1]) }),
      'SAFETENSORS_BAD_METADATA',
    );
    throwsWithCode(() => serializeSafetensors({}, { a: 1 as unknown as string }), 'SAFETENSORS_BAD_METADATA');
  });
});
