import { type HostTensor, TensorError, fmtShape, toInt32 } from '@qf/io';

/**
 * The full sequences HF decoder-only `generate` returns when `input_ids` are passed: each prompt row
 * (padding included) followed by its generated tokens. With `numReturnSequences` > 1 every prompt row
 * is repeated that many times (HF `repeat_interleave`).
 * @param promptIds int [B, T]
 * @param generated int [B * numReturnSequences, N] (`GenerateResult.sequences`)
 * @returns int32 [B * numReturnSequences, T + N]
 */
export function withPrompt(
  promptIds: HostTensor,
  generated: HostTensor,
  numReturnSequences = 1,
): HostTensor<'I32'> {
  if (promptIds.shape.length !== 2)
    throw new TensorError('TENSOR_SHAPE', 'input_ids', 'must be [B, T]', '[B, T]', fmtShape(promptIds.shape));
  const [b, t] = promptIds.shape as [number, number];
  const rows = b * numReturnSequences;
  if (generated.shape.length !== 2 || generated.shape[0] !== rows)
    throw new TensorError(
      'TENSOR_SHAPE',
      'sequences',
      'one row per prompt row and return sequence',
      `[${rows}, N]`,
      fmtShape(generated.shape),
    );
  const n = generated.shape[1] as number;
  const p = toInt32(promptIds, 'input_ids');
  const g = toInt32(generated, 'sequences');
  const out = new Int32Array(rows * (t + n));
  for (let r = 0; r < rows; r++) {
    const src = Math.floor(r / numReturnSequences);
    out.set(p.subarray(src * t, (src + 1) * t), r * (t + n));
    out.set(g.subarray(r * n, (r + 1) * n), r * (t + n) + t);
  }
  return { dtype: 'I32', shape: [rows, t + n], data: out };
}

/** `[[bos]] * batch` (int32 [B, 1]): BLIP-2's prompt when the caller gives none (decoder-only LMs). */
export function bosPrompt(batch: number, bos: number): HostTensor<'I32'> {
  return { dtype: 'I32', shape: [batch, 1], data: new Int32Array(batch).fill(bos) };
}

/** Length settings of a BLIP-2 `generate` call (HF names; undefined = not passed). */
export interface Blip2LengthArgs {
  /** Q, the number of soft-prompt positions. */
  readonly queryLength: number;
  /** T, the number of prompt ids (1 for the BOS-only prompt). */
  readonly promptLength: number;
  readonly maxNewTokens?: number | undefined;
  /** HF `max_length` as passed to `Blip2ForConditionalGeneration.generate` (HF default 20). */
  readonly maxLength?: number | undefined;
  readonly minNewTokens?: number | undefined;
  /** HF `min_length` as passed to `generate` (HF default 0). */
  readonly minLength?: number | undefined;
}

/**
 * The effective lengths of HF (4.47) `Blip2ForConditionalGeneration.generate` with a decoder-only LM,
 * as options for `generate`: BLIP-2 sets `max_length += Q - 1` and `min_length += Q`, then
 * `GenerationMixin` (called with `inputs_embeds` of length Q + T and `input_ids` of length T) lets
 * `max_new_tokens` override `max_length`, or else subtracts Q + T from `max_length`, and lowers
 * `min_length` to `max(min_length - (Q + T), 0)` unless `min_new_tokens` is set. Both are then
 * compared with T + new tokens.
 */
export function blip2DecoderOnlyLengths(a: Blip2LengthArgs): {
  maxNewTokens: number;
  minLength: number;
  minNewTokens: number | undefined;
  promptLength: number;
} {
  const q = a.queryLength;
  const t = a.promptLength;
  const maxLength = (a.maxLength ?? 20) + q - 1 - (q + t);
  const maxNewTokens = a.maxNewTokens ?? maxLength - t;
  const minLength =
    a.minNewTokens !== undefined ? a.minNewTokens + t : Math.max((a.minLength ?? 0) + q - (q + t), 0);
  return { maxNewTokens, minLength, minNewTokens: a.minNewTokens, promptLength: t };
}
