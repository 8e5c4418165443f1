import type { HostTensor } from '../dtypes.js';
import { QfError, SafetensorsError, TensorError } from '../errors.js';
import type { TensorInfo } from '../safetensors/header.js';
import { type ShardIndex, parseShardIndex } from './index-json.js';
import type { Checkpoint, ReadOptions } from './types.js';

/**
 * Opens one shard by its file name as listed in the index (e.g. `model-00001-of-00002.safetensors`).
 * Node passes a function that opens the file next to the index; a browser one that opens a URL.
 */
export type OpenShard = (fileName: string) => Promise<Checkpoint>;

function wrapOpenError(file: string, err: unknown): Error {
  if (err instanceof QfError) return err;
  const message = (err as Error)?.message ?? String(err);
  if ((err as { code?: unknown })?.code === 'ENOENT') {
    return new SafetensorsError(
      'SAFETENSORS_SHARD_MISSING',
      `shard "${file}" listed in the index does not exist`,
      {
        cause: err,
      },
    );
  }
  return new SafetensorsError(
    'SAFETENSORS_SHARD_OPEN_FAILED',
    `shard "${file}" could not be opened: ${message}`,
    {
      cause: err,
    },
  );
}

/**
 * A checkpoint split over several safetensors shards by a `model.safetensors.index.json`. Opening reads
 * each shard's header (through the injected {@link OpenShard}) and checks that every tensor the index
 * lists is in its shard; tensor data is read lazily, one tensor at a time, from the shard that holds
 * it. Tensors present in a shard but absent from the index are not exposed, as in HF transformers.
 */
export class ShardedCheckpoint implements Checkpoint {
  /** The validated index. */
  readonly index: ShardIndex;
  readonly #shards: Map<string, Checkpoint>;
  #closed = false;

  private constructor(index: ShardIndex, shards: Map<string, Checkpoint>) {
    this.index = index;
    this.#shards = shards;
  }

  /**
   * Validates `index` (text, parsed JSON, or a {@link ShardIndex}), opens every shard it names and
   * checks the weight map against the shard headers. Errors (SafetensorsError): the codes of
   * `parseShardIndex`, `SAFETENSORS_SHARD_MISSING`, `SAFETENSORS_SHARD_OPEN_FAILED`,
   * `SAFETENSORS_INDEX_TENSOR_MISSING` (a listed tensor is not in its shard), or the shard's own
   * safetensors error. On failure every shard already opened is closed.
   */
  static async open(index: ShardIndex | string | unknown, openShard: OpenShard): Promise<ShardedCheckpoint> {
    const parsed = isShardIndex(index) ? index : parseShardIndex(index);
    const shards = new Map<string, Checkpoint>();
    const results = await Promise.allSettled(
      parsed.shards.map(async (file) => {
        try {
          shards.set(file, await openShard(file));
        } catch (err) {
          throw wrapOpenError(file, err);
        }
      }),
    );
    const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    try {
      if (failure) throw failure.reason;
      for (const [name, file] of parsed.weightMap) {
        if (shards.get(file)?.info(name) === undefined) {
          throw new SafetensorsError(
            'SAFETENSORS_INDEX_TENSOR_MISSING',
            `tensor "${name}" is listed in the index for shard "${file}" but that shard does not hold it`,
          );
        }
      }
    } catch (err) {
      await Promise.allSettled([...shards.values()].map((s) => s.close()));
      throw err;
    }
    return new ShardedCheckpoint(parsed, shards);
  }

  /** Tensor names in index order. */
  names(): string[] {
    return [...this.index.weightMap.keys()];
  }

  /** The shard file that holds `name`, or undefined. */
  shardOf(name: string): string | undefined {
    return this.index.weightMap.get(name);
  }

  /** Dtype, shape and in-shard location of `name`, or undefined when the index does not list it. */
  info(name: string): TensorInfo | undefined {
    const file = this.index.weightMap.get(name);
    return file === undefined ? undefined : this.#shards.get(file)?.info(name);
  }

  /** Reads one tensor from its shard; an unlisted name throws TensorError `TENSOR_MISSING`. */
  async read(name: string, opts: ReadOptions = {}): Promise<HostTensor> {
    const file = this.index.weightMap.get(name);
    const shard = file === undefined ? undefined : this.#shards.get(file);
    if (shard === undefined) {
      throw new TensorError(
        'TENSOR_MISSING',
        name,
        `not in this sharded checkpoint (${this.index.weightMap.size} tensors)`,
      );
    }
    return shard.read(name, opts);
  }

  /** Closes every shard. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const results = await Promise.allSettled([...this.#shards.values()].map((s) => s.close()));
    const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure) throw failure.reason;
  }
}

function isShardIndex(v: unknown): v is ShardIndex {
  return typeof v === 'object' && v !== null && (v as ShardIndex).weightMap instanceof Map;
}
