import type { HostTensor } from '../dtypes.js';
import { QfError } from '../errors.js';

/** How {@link planShards} splits tensors over files. */
export interface ShardPlan {
  /** Files to write, each with the tensor names it holds (sorted). */
  readonly files: readonly { readonly file: string; readonly names: readonly string[] }[];
  /** The `model.safetensors.index.json` content, or undefined when everything fits in one file. */
  readonly index: { metadata: { total_size: number }; weight_map: Record<string, string> } | undefined;
}

/**
 * Splits tensors (sorted by name) into HF-style shards of at most `maxShardBytes` of tensor data each
 * (a tensor larger than the limit gets a shard of its own). One shard is named `model.safetensors`
 * with no index; several are named `model-00001-of-0000N.safetensors` with an index whose weight map
 * lists every tensor.
 */
export function planShards(
  tensors: Readonly<Record<string, HostTensor>>,
  maxShardBytes: number = Number.POSITIVE_INFINITY,
): ShardPlan {
  if (!(maxShardBytes > 0))
    throw new QfError('SHARD_PLAN_INVALID', `maxShardBytes must be > 0, got ${maxShardBytes}`);
  const names = Object.keys(tensors).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const groups: string[][] = [];
  let current: string[] = [];
  let bytes = 0;
  let total = 0;
  for (const name of names) {
    const size = tensors[name]!.data.byteLength;
    total += size;
    if (current.length > 0 && bytes + size > maxShardBytes) {
      groups.push(current);
      current = [];
      bytes = 0;
    }
    current.push(name);
    bytes += size;
  }
  if (current.length > 0 || groups.length === 0) groups.push(current);
  if (groups.length === 1)
    return { files: [{ file: 'model.safetensors', names: groups[0]! }], index: undefined };
  const n = String(groups.length).padStart(5, '0');
  const files = groups.map((g, i) => ({
    file: `model-${String(i + 1).padStart(5, '0')}-of-${n}.safetensors`,
    names: g,
  }));
  const weightMap: Record<string, string> = {};
  for (const f of files)
    for (const name of f.names)
      Object.defineProperty(weightMap, name, {
        value: f.file,
        enumerable: true,
        writable: true,
        configurable: true,
      });
  return { files, index: { metadata: { total_size: total }, weight_map: weightMap } };
}
