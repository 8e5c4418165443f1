import type { HostTensor } from '../dtypes.js';
import type { TensorInfo } from '../safetensors/header.js';

/** Options of {@link Checkpoint.read}. */
export interface ReadOptions {
  /** Convert F16, BF16 and F64 tensors to F32 (integer tensors are never touched). */
  float32?: boolean;
}

/**
 * Named tensors with lazy reads: a single safetensors file (`SafetensorsFile`) or a sharded HF
 * checkpoint (`ShardedCheckpoint`). Names are the checkpoint's own; map them with the name maps.
 */
export interface Checkpoint {
  /** Every tensor name. */
  names(): string[];
  /** Dtype, shape and location of `name`, or undefined when the checkpoint has no such tensor. */
  info(name: string): TensorInfo | undefined;
  /** Reads one tensor; an unknown name rejects with TensorError `TENSOR_MISSING`. */
  read(name: string, opts?: ReadOptions): Promise<HostTensor>;
  /** Releases files/handles. Idempotent. */
  close(): Promise<void>;
}
