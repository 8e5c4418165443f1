import type { HostTensor } from '@qf/io';

/**
 * Options of {@link generate}, with HF `GenerationConfig` semantics. Lengths that HF counts over
 * `input_ids` (min_length, max_length) count the prompt ids (`promptLength`) plus the new tokens;
 * soft-prompt positions never count (see `blip2DecoderOnlyLengths` for BLIP-2's own adjustments).
 */
export interface GenerateOptions {
  /** Most new tokens per row (HF `max_new_tokens`). */
  readonly maxNewTokens: number;
  /** HF `max_length` over prompt ids + new tokens; the tighter of this and `maxNewTokens` applies. */
  readonly maxLength?: number | undefined;
  /** 1 (default): greedy search; more: beam search. */
  readonly numBeams?: number | undefined;
  /** End-of-sequence id(s); none: rows only stop at the length limit. */
  readonly eosTokenId?: number | readonly number[] | undefined;
  /** Fills rows after their EOS (greedy) and short beam outputs; default: the first EOS id, as HF. */
  readonly padTokenId?: number | undefined;
  /** HF `min_length`: EOS is suppressed while prompt ids + new tokens < minLength. */
  readonly minLength?: number | undefined;
  /** HF `min_new_tokens`: EOS is suppressed while new tokens < minNewTokens. */
  readonly minNewTokens?: number | undefined;
  /** Number of prompt ids (HF `input_ids.shape[-1]`) for `minLength`/`maxLength`; default 0. */
  readonly promptLength?: number | undefined;
  /** Beam search: the score of a hypothesis is `sum(logprobs) / length ** lengthPenalty` (default 1). */
  readonly lengthPenalty?: number | undefined;
  /**
   * Beam search stopping (HF `early_stopping`, default false): `true` stops a batch row once
   * `numBeams` hypotheses are finished; `false` also when the best running beam, normalised by the
   * current length, cannot beat the worst kept hypothesis (a heuristic); `'never'` only when no
   * better hypothesis is possible.
   */
  readonly earlyStopping?: boolean | 'never' | undefined;
  /** Beam search: hypotheses returned per row (default 1, at most `numBeams`). */
  readonly numReturnSequences?: number | undefined;
}

/** What {@link generate} returns. */
export interface GenerateResult {
  /**
   * int32 [rows, N]: the new tokens only (prepend the prompt with `withPrompt`). Greedy: one row per
   * input row, padded after EOS. Beam search: `numReturnSequences` rows per input row, each the
   * hypothesis followed by EOS when it finished and padding to the longest, as HF's `finalize`.
   */
  readonly sequences: HostTensor<'I32'>;
  /**
   * float32 [scoreRows, steps, V]: the processed scores of every step (HF `output_scores`). Greedy:
   * the raw logits after the logits processors, one row per input row. Beam search: log-softmax
   * after the processors, one row per beam (row `b * numBeams + k` is beam k of input row b at that
   * step; beams are reordered between steps, as in HF).
   */
  readonly scores: HostTensor<'F32'>;
  /** Beam search only: float32 [rows], the length-normalised score of each returned sequence. */
  readonly sequenceScores?: HostTensor<'F32'> | undefined;
}

/** EOS ids as a list. */
export function eosList(eos: GenerateOptions['eosTokenId']): readonly number[] {
  if (eos === undefined) return [];
  return typeof eos === 'number' ? [eos] : eos;
}

/** Number of new tokens the length limits allow. */
export function maxSteps(o: GenerateOptions): number {
  const prompt = o.promptLength ?? 0;
  let steps = o.maxNewTokens;
  if (o.maxLength !== undefined) steps = Math.min(steps, o.maxLength - prompt);
  if (!Number.isInteger(steps) || steps < 1)
    throw new RangeError(
      `generate: no room for new tokens (maxNewTokens ${o.maxNewTokens}, maxLength ${o.maxLength}, promptLength ${prompt})`,
    );
  return steps;
}

/**
 * The logits processors HF applies by default that matter here: `MinLengthLogitsProcessor` and
 * `MinNewTokensLengthLogitsProcessor` (EOS -> -inf). Mutates `scores` [rows, V] in place.
 * @param generated new tokens so far (the step about to be chosen is `generated + 1`)
 */
export function applyMinLength(
  scores: Float32Array,
  vocabSize: number,
  generated: number,
  o: GenerateOptions,
  eos: readonly number[],
): void {
  const curLen = (o.promptLength ?? 0) + generated;
  const suppress =
    (o.minLength !== undefined && curLen < o.minLength) ||
    (o.minNewTokens !== undefined && generated < o.minNewTokens);
  if (!suppress || eos.length === 0) return;
  const rows = scores.length / vocabSize;
  for (let r = 0; r < rows; r++) for (const e of eos) scores[r * vocabSize + e] = Number.NEGATIVE_INFINITY;
}

/** Stacks per-step [rows, V] score arrays into [rows, steps, V]. */
export function stackScores(
  steps: readonly Float32Array[],
  rows: number,
  vocabSize: number,
): HostTensor<'F32'> {
  const n = steps.length;
  const out = new Float32Array(rows * n * vocabSize);
  steps.forEach((s, t) => {
    for (let r = 0; r < rows; r++)
      out.set(s.subarray(r * vocabSize, (r + 1) * vocabSize), (r * n + t) * vocabSize);
  });
  return { dtype: 'F32', shape: [rows, n, vocabSize], data: out };
}
