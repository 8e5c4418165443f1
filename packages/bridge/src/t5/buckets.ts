import type { Ops } from '@qf/core';
import type { T5Config } from './config.js';

/** float32 min: HF's fill for masked positions in T5 (`torch.finfo(float32).min`). */
export const T5_MASK_FILL = -3.4028234663852886e38;

/**
 * HF `T5Attention._relative_position_bucket` for one relative position (`key - query`), with the
 * float32 arithmetic of the PyTorch original (log, divide, scale, truncate), so ties at exact powers
 * of two (e.g. distance 16, 32, 64 with 32 buckets / max distance 128) land in the same bucket.
 * @param bidirectional true in the encoder (half the buckets for positive offsets), false in the
 *   decoder (positive offsets, i.e. future keys, all map to bucket 0)
 */
export function relativePositionBucket(
  relativePosition: number,
  bidirectional: boolean,
  numBuckets: number,
  maxDistance: number,
): number {
  const f = Math.fround;
  let buckets = numBuckets;
  let base = 0;
  let n: number;
  if (bidirectional) {
    buckets = Math.floor(buckets / 2);
    if (relativePosition > 0) base = buckets;
    n = Math.abs(relativePosition);
  } else {
    n = -Math.min(relativePosition, 0);
  }
  const maxExact = Math.floor(buckets / 2);
  if (n < maxExact) return base + n;
  const logRatio = f(Math.log(f(n / maxExact)));
  const scaled = f(f(logRatio / f(Math.log(maxDistance / maxExact))) * (buckets - maxExact));
  return base + Math.min(maxExact + Math.trunc(scaled), buckets - 1);
}

/**
 * Bucket ids of every relative position in [-M, M] (M = `relative_attention_max_distance`), row
 * `r + M` for position r. Positions beyond ±M share the bucket of ±M (HF's log buckets saturate
 * there; `parseT5Config` guarantees M is past the exact range), so clamping to [-M, M] is exact.
 */
export function t5BucketTable(cfg: T5Config, bidirectional: boolean): Int32Array {
  const m = cfg.relativeAttentionMaxDistance;
  const out = new Int32Array(2 * m + 1);
  for (let r = -m; r <= m; r++)
    out[r + m] = relativePositionBucket(
      r,
      bidirectional,
      cfg.relativeAttentionNumBuckets,
      cfg.relativeAttentionMaxDistance,
    );
  return out;
}

/**
 * The relative position bias of HF `T5Attention.compute_bias`, computed in the graph from the
 * lengths of the query and key sequences only, so it works with dynamic lengths on recording
 * backends (ONNX): no host-side bucket input is needed.
 *
 * Queries are the last Lq of the Lk key positions (no past positions in the encoder and in a full
 * decoder pass; P = Lk - Lq cached ones in an incremental step), so query i sits at position
 * `P + i` and `rel[i, j] = j - P - i = (j - (Lk - 1)) - (i - (Lq - 1))`, built from the two ranges
 * and their maxima. `rel` is clamped to [-M, M] and looks up a per-position table
 * `weight[t5BucketTable]` [2M+1, heads]. In the decoder (`bidirectional` false) the table also carries
 * the causal mask: rows of future positions (rel > 0) get float32 min added, as HF adds its causal
 * mask to the position bias.
 * @param weight `relative_attention_bias.weight` [num_buckets, heads]
 * @param queryRange int [Lq] = 0..Lq-1 (`ops.range` over the query axis)
 * @param keyRange int [Lk] = 0..Lk-1 (`ops.range` over the key axis)
 * @returns [1, heads, Lq, Lk]
 */
export function t5PositionBias<T>(
  ops: Ops<T>,
  cfg: T5Config,
  weight: T,
  bidirectional: boolean,
  queryRange: T,
  keyRange: T,
): T {
  const m = cfg.relativeAttentionMaxDistance;
  const fromEnd = (r: T) => ops.sub(r, ops.max(r, 0, true)); // [n]: i - (n - 1)
  const q = ops.reshape(fromEnd(queryRange), [1, -1, 1]); // [1, Lq, 1]
  const k = ops.reshape(fromEnd(keyRange), [1, 1, -1]); // [1, 1, Lk]
  const int = (v: number) => ops.constant(Int32Array.of(v), []);
  const rel = ops.maximum(ops.minimum(ops.sub(k, q), int(m)), int(-m)); // [1, Lq, Lk] in [-M, M]
  const ids = ops.add(rel, int(m));
  let table = ops.gather(weight, ops.constant(t5BucketTable(cfg, bidirectional), [2 * m + 1])); // [2M+1, h]
  if (!bidirectional) {
    const future = new Float32Array(2 * m + 1);
    future.fill(T5_MASK_FILL, m + 1);
    table = ops.add(table, ops.constant(future, [2 * m + 1, 1]));
  }
  return ops.transpose(ops.gather(table, ids), [0, 3, 1, 2]); // [1, h, Lq, Lk]
}
