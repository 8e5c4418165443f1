import { type HostTensor, TensorError, fmtShape, toFloat32 } from '@qf/io';
import type { Ops } from './ops.js';

/** Fill for masked self-attention positions: HF adds `(1 - m) * -10000`. */
export const SELF_ATTENTION_FILL = -10000;
/** Fill for masked cross-attention (image) positions: HF adds `(1 - m) * float32.min`. */
export const CROSS_ATTENTION_FILL = -3.4028234663852886e38;

/**
 * The three stage-1 self-attention patterns over `[queries ; text]`:
 * - `unimodal` (ITC): queries see only queries, text sees only (non-pad) text;
 * - `bidirectional` (ITM): every row sees every query and every non-pad text token;
 * - `multimodal-causal` (ITG): queries see only queries; text token t sees all queries and the
 *   non-pad text tokens 0..t.
 */
export type Stage1Pattern = 'unimodal' | 'bidirectional' | 'multimodal-causal';

/**
 * Padding "keep" mask [B, N] (1 = attend, 0 = padding) -> additive mask [B, 1, 1, N] in the graph.
 * Use {@link SELF_ATTENTION_FILL} for text padding and {@link CROSS_ATTENTION_FILL} for image padding.
 */
export function paddingMask<T>(ops: Ops<T>, keep: T, fill: number): T {
  const k = ops.reshape(ops.toFloat(keep), [0, 1, 1, -1]); // [B, 1, 1, N]
  return ops.mul(ops.sub(ops.scalar(1), k), ops.scalar(fill));
}

/** A keep matrix [B, L, M] (1 = attend) -> additive mask [B, 1, L, M] in the graph. */
export function additiveMask<T>(ops: Ops<T>, keep: T, fill = SELF_ATTENTION_FILL): T {
  // [B, L, M] -> [B, L, 1, M] -> [B, 1, L, M]: a reshape alone cannot insert the head axis at 1
  // while L and M stay dynamic (`0` copies the input dim at the same position).
  const k = ops.transpose(ops.reshape(ops.toFloat(keep), [0, 0, 1, -1]), [0, 2, 1, 3]);
  return ops.mul(ops.sub(ops.scalar(1), k), ops.scalar(fill));
}

/**
 * The ITM pattern in the graph: `[1]*Q ++ textMask` as an additive [B, 1, 1, Q + T] mask.
 * @param textKeep [B, T] 1 = real token
 */
export function bidirectionalMask<T>(ops: Ops<T>, queryLength: number, textKeep: T): T {
  const ones = ops.expandBatch(
    ops.constant(new Float32Array(queryLength).fill(1), [1, queryLength]),
    textKeep,
  );
  return paddingMask(ops, ops.concat([ones, ops.toFloat(textKeep)], 1), SELF_ATTENTION_FILL);
}

/** Reads a [B, T] 0/1 text mask from the host, checking its shape. */
function textKeepRows(textMask: HostTensor): { b: number; t: number; m: Float32Array } {
  if (textMask.shape.length !== 2) {
    throw new TensorError(
      'TENSOR_SHAPE',
      'attention_mask',
      'must be [B, T]',
      '[B, T]',
      fmtShape(textMask.shape),
    );
  }
  const [b, t] = textMask.shape as [number, number];
  return { b, t, m: toFloat32(textMask) };
}

/**
 * Builds a stage-1 keep matrix on the host (1 = row may attend to column).
 * @param queryLength Q
 * @param textMask [B, T] padding mask of the text (1 = real token)
 * @returns F32 [B, Q + T, Q + T]
 */
export function stage1Keep(
  pattern: Stage1Pattern,
  queryLength: number,
  textMask: HostTensor,
): HostTensor<'F32'> {
  const { b, t, m } = textKeepRows(textMask);
  const q = queryLength;
  const l = q + t;
  const out = new Float32Array(b * l * l);
  for (let bi = 0; bi < b; bi++) {
    for (let i = 0; i < l; i++) {
      const rowIsQuery = i < q;
      for (let j = 0; j < l; j++) {
        const colIsQuery = j < q;
        const colKeep = colIsQuery ? 1 : (m[bi * t + (j - q)] ?? 0);
        let allowed: boolean;
        if (pattern === 'bidirectional') allowed = true;
        else if (pattern === 'unimodal') allowed = rowIsQuery === colIsQuery;
        else allowed = rowIsQuery ? colIsQuery : colIsQuery || j <= i;
        out[(bi * l + i) * l + j] = allowed ? colKeep : 0;
      }
    }
  }
  return { dtype: 'F32', shape: [b, l, l], data: out };
}

/**
 * The text rows of the `multimodal-causal` pattern, for an ITG pass that reads the queries' keys and
 * values from an earlier query pass (see `QFormerPassInputs.pastQuery`): text token t may attend to
 * every query and to the non-pad text tokens 0..t (LAVIS: causal mask with a ones prefix, times
 * `cat(ones(Q), attention_mask)`).
 * @param queryLength Q
 * @param textMask [B, T] padding mask of the text (1 = real token)
 * @returns F32 [B, T, Q + T] (1 = attend); turn it into an additive mask with {@link additiveMask}
 */
export function itgTextKeep(queryLength: number, textMask: HostTensor): HostTensor<'F32'> {
  const { b, t, m } = textKeepRows(textMask);
  const q = queryLength;
  const l = q + t;
  const out = new Float32Array(b * t * l);
  for (let bi = 0; bi < b; bi++) {
    for (let i = 0; i < t; i++) {
      for (let j = 0; j < l; j++) {
        const keep = j < q ? 1 : j - q <= i ? (m[bi * t + (j - q)] ?? 0) : 0;
        out[(bi * t + i) * l + j] = keep;
      }
    }
  }
  return { dtype: 'F32', shape: [b, t, l], data: out };
}
