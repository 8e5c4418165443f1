import { typedArrayToBytes } from '../bytes.js';
import { DTYPE_BYTES, type HostTensor, hostTensor } from '../dtypes.js';
import { SafetensorsError, TensorError } from '../errors.js';
import { MAX_HEADER_BYTES } from './header.js';

/** One tensor's place in a planned safetensors file. */
export interface PlannedTensor {
  readonly name: string;
  readonly tensor: HostTensor;
  /** `[begin, end)` relative to the data section. */
  readonly dataOffsets: readonly [number, number];
}

/** Everything needed to write a safetensors file, before any data is copied. */
export interface SafetensorsPlan {
  /** The 8-byte length prefix followed by the space-padded header JSON (length a multiple of 8). */
  readonly header: Uint8Array;
  /** Tensors in data order. */
  readonly tensors: readonly PlannedTensor[];
  /** Total file size in bytes. */
  readonly byteLength: number;
}

/**
 * Validates `tensors` and `metadata` and lays out a safetensors file without copying any data.
 * Order is deterministic: wider dtypes first, then by name (code-point order), which with the
 * 8-byte-padded header keeps every tensor naturally aligned in the file. Each tensor's dtype, shape
 * and data length are checked (TensorError naming it); metadata values must be strings and no
 * tensor may be called `__metadata__` (SafetensorsError `SAFETENSORS_BAD_METADATA`).
 */
export function planSafetensors(
  tensors: Readonly<Record<string, HostTensor>>,
  metadata?: Readonly<Record<string, string>>,
): SafetensorsPlan {
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') {
        throw new SafetensorsError(
          'SAFETENSORS_BAD_METADATA',
          `metadata "${k}": expected a string, got ${typeof v}`,
        );
      }
    }
    header.__metadata__ = { ...metadata };
  }
  const entries = Object.entries(tensors).map(([name, t]) => {
    if (name === '__metadata__') {
      throw new SafetensorsError('SAFETENSORS_BAD_METADATA', 'a tensor cannot be called "__metadata__"');
    }
    if (t === null || typeof t !== 'object') throw new TensorError('TENSOR_MISSING', name, 'is not a tensor');
    return [name, hostTensor(t.dtype, t.shape, t.data, name)] as const;
  });
  entries.sort(
    ([an, at], [bn, bt]) => DTYPE_BYTES[bt.dtype] - DTYPE_BYTES[at.dtype] || (an < bn ? -1 : an > bn ? 1 : 0),
  );
  let offset = 0;
  const planned: PlannedTensor[] = entries.map(([name, tensor]) => {
    const begin = offset;
    offset += tensor.data.byteLength;
    const dataOffsets = [begin, offset] as const;
    Object.defineProperty(header, name, {
      value: { dtype: tensor.dtype, shape: tensor.shape, data_offsets: dataOffsets },
      enumerable: true,
      writable: true,
      configurable: true,
    });
    return { name, tensor, dataOffsets };
  });
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded > MAX_HEADER_BYTES) {
    throw new SafetensorsError(
      'SAFETENSORS_HEADER_TOO_LARGE',
      `header would be ${padded} bytes (limit ${MAX_HEADER_BYTES})`,
    );
  }
  const head = new Uint8Array(8 + padded).fill(0x20, 8 + json.length);
  new DataView(head.buffer).setBigUint64(0, BigInt(padded), true);
  head.set(json, 8);
  return { header: head, tensors: planned, byteLength: head.length + offset };
}

/** The little-endian bytes of a planned tensor (a view of its data on little-endian hosts). */
export function plannedTensorBytes(t: PlannedTensor): Uint8Array {
  return typedArrayToBytes(t.tensor.dtype, t.tensor.data);
}

/**
 * Serializes tensors (and optional string metadata) to safetensors bytes in memory. See
 * {@link planSafetensors} for the layout and checks. For large checkpoints in Node prefer
 * `writeSafetensorsFile`, which streams tensors to disk.
 */
export function serializeSafetensors(
  tensors: Readonly<Record<string, HostTensor>>,
  metadata?: Readonly<Record<string, string>>,
): Uint8Array<ArrayBuffer> {
  const plan = planSafetensors(tensors, metadata);
  const out = new Uint8Array(plan.byteLength);
  out.set(plan.header, 0);
  for (const t of plan.tensors) out.set(plannedTensorBytes(t), plan.header.length + t.dataOffsets[0]);
  return out;
}

/** Metadata HF transformers expects on PyTorch checkpoints (`from_pretrained` rejects other formats). */
export const HF_PT_METADATA: Readonly<Record<string, string>> = Object.freeze({ format: 'pt' });
