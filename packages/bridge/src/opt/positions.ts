import { type HostTensor, TensorError, fmtShape, toInt32 } from '@qf/io';

/**
 * How HF derives OPT position ids from a 0/1 attention mask [B, S] (before OPT's offset of 2):
 * - `generate`: `GenerationMixin.prepare_inputs_for_generation`: `cumsum(mask) - 1`, padding -> 1
 *   (transformers 4.47 and 5.x);
 * - `forward`: `OPTDecoder.forward` / `OPTLearnedPositionalEmbedding` without `position_ids`:
 *   `cumsum(mask) * mask - 1`, padding -> -1 (transformers 4.47 and 5.x).
 * Real tokens get the same positions either way; only padded positions differ (their outputs are
 * visible, e.g. the logits of a right-padded row's last position).
 */
export type PositionMode = 'generate' | 'forward';

/** Position ids [B, S] (int32) from an attention mask [B, S], as HF computes them (see {@link PositionMode}). */
export function optPositionIds(attentionMask: HostTensor, mode: PositionMode): HostTensor<'I32'> {
  if (attentionMask.shape.length !== 2)
    throw new TensorError(
      'TENSOR_SHAPE',
      'attention_mask',
      'must be [B, S]',
      '[B, S]',
      fmtShape(attentionMask.shape),
    );
  const [b, s] = attentionMask.shape as [number, number];
  const m = toInt32(attentionMask, 'attention_mask');
  const out = new Int32Array(b * s);
  for (let r = 0; r < b; r++) {
    let sum = 0;
    for (let j = 0; j < s; j++) {
      const keep = m[r * s + j] ?? 0;
      sum += keep;
      out[r * s + j] = keep ? sum - 1 : mode === 'generate' ? 1 : -1;
    }
  }
  return { dtype: 'I32', shape: [b, s], data: out };
}
