import { SafetensorsError, previewValue } from '../errors.js';

/** A parsed and validated `model.safetensors.index.json`. */
export interface ShardIndex {
  /** The index's `metadata` object (e.g. `total_size`), empty when absent. */
  readonly metadata: Readonly<Record<string, unknown>>;
  /** Tensor name -> shard file name, in index order. */
  readonly weightMap: ReadonlyMap<string, string>;
  /** Distinct shard file names, in first-use order. */
  readonly shards: readonly string[];
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * True for a shard file name that stays inside the checkpoint directory: relative, no `..` segment,
 * no backslash or NUL.
 */
export function isSafeShardName(file: string): boolean {
  if (file.length === 0 || file.startsWith('/') || /[\\\0]/.test(file) || /^[a-zA-Z]:/.test(file))
    return false;
  return file.split('/').every((seg) => seg !== '' && seg !== '.' && seg !== '..');
}

/**
 * Parses `model.safetensors.index.json` (text or already-parsed JSON). Errors are SafetensorsError:
 * `SAFETENSORS_INDEX_BAD_JSON` (not JSON / not an object), `SAFETENSORS_INDEX_NO_WEIGHT_MAP` (missing
 * or not an object), `SAFETENSORS_INDEX_BAD_ENTRY` (a value that is not a safe relative file name).
 */
export function parseShardIndex(json: unknown): ShardIndex {
  let value = json;
  if (typeof json === 'string') {
    try {
      value = JSON.parse(json);
    } catch (err) {
      throw new SafetensorsError(
        'SAFETENSORS_INDEX_BAD_JSON',
        `index is not valid JSON: ${(err as Error).message}`,
      );
    }
  }
  if (!isPlainObject(value)) {
    throw new SafetensorsError('SAFETENSORS_INDEX_BAD_JSON', 'index must be a JSON object');
  }
  const map = value.weight_map;
  if (!isPlainObject(map)) {
    throw new SafetensorsError(
      'SAFETENSORS_INDEX_NO_WEIGHT_MAP',
      `index field "weight_map": expected an object of tensor name -> shard file, got ${
        map === undefined ? 'nothing' : previewValue(map, 60)
      }`,
    );
  }
  const weightMap = new Map<string, string>();
  const shards = new Set<string>();
  for (const [name, file] of Object.entries(map)) {
    if (typeof file !== 'string' || !isSafeShardName(file)) {
      throw new SafetensorsError(
        'SAFETENSORS_INDEX_BAD_ENTRY',
        `index entry "weight_map.${name}": expected a relative shard file name, got ${previewValue(file, 80)}`,
      );
    }
    weightMap.set(name, file);
    shards.add(file);
  }
  const metadata = isPlainObject(value.metadata) ? { ...value.metadata } : {};
  return { metadata, weightMap, shards: [...shards] };
}
