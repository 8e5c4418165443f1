import type { Ops, ParamStore } from '@qf/core';
import { type HostTensor, TensorError, fmtShape, toInt32 } from '@qf/io';
import type { LanguageModel } from './lm/types.js';

/**
 * Soft-prompt assembly: BLIP-2 feeds the language model `[soft prompt ; embed(text)]` and the mask
 * `[ones(Q) ; text mask]` (HF "legacy concatenation" flow, `image_token_index` unset).
 * - decoder-only (OPT): the text is prompt + target; labels are -100 on the query positions, on the
 *   prompt and on padding ({@link decoderOnlyLabels}); the loss shifts by one (see `loss.ts`).
 * - encoder-decoder (T5): the encoder reads `[soft prompt ; embed(prefix)]`; the decoder labels are the
 *   target ids as given (-100 on padding), no shift.
 * - InstructBLIP needs nothing special here: the caller slices the Q-Former output to its first Q rows
 *   before the projector (`softPromptFromQFormer(..., queryLength)`).
 */

/** Label value ignored by the losses (PyTorch `CrossEntropyLoss.ignore_index`). */
export const IGNORE_INDEX = -100;

/** Inputs of the LM's first pass: `inputs_embeds` [B, Q + T, D] and an int mask [B, Q + T]. */
export interface SoftPromptInputs<T> {
  readonly inputsEmbeds: T;
  readonly attentionMask: T;
}

/** int [B, Q] of ones, sized from the soft prompt [B, Q, D] in the graph (Q stays dynamic). */
export function softPromptOnes<T>(ops: Ops<T>, softPrompt: T): T {
  const row = ops.add(
    ops.mul(ops.range(softPrompt, 1), ops.constant(Int32Array.of(0), [])),
    ops.constant(Int32Array.of(1), []),
  );
  return ops.expandBatch(ops.reshape(row, [1, -1]), softPrompt); // [B, Q]
}

/**
 * `[soft prompt ; embed(ids)]` with the mask `[ones(Q) ; textMask]` (all ones when `textMask` is
 * omitted). The same for a decoder-only LM's input and an encoder-decoder LM's encoder input.
 * @param softPrompt [B, Q, D] (the projector's output)
 * @param ids int [B, T]
 * @param textMask int [B, T], 1 = token
 */
export function softPromptInputs<T>(
  ops: Ops<T>,
  lm: LanguageModel,
  params: ParamStore<T>,
  softPrompt: T,
  ids: T,
  textMask?: T,
): SoftPromptInputs<T> {
  const text = lm.embed(ops, params, ids); // [B, T, D]
  const mask =
    textMask ?? ops.add(ops.mul(ids, ops.constant(Int32Array.of(0), [])), ops.constant(Int32Array.of(1), []));
  return {
    inputsEmbeds: ops.concat([softPrompt, text], 1),
    attentionMask: ops.concat([softPromptOnes(ops, softPrompt), mask], 1),
  };
}

/** Decoder-only LM input: `[soft prompt ; embed(prompt + text ids)]` and its mask. */
export const decoderOnlyInputs = softPromptInputs;

/** Encoder-decoder LM encoder input: `[soft prompt ; embed(prefix ids)]` and its mask. */
export const encoderDecoderInputs = softPromptInputs;

function checkMatrix(name: string, t: HostTensor): [number, number] {
  if (t.shape.length !== 2)
    throw new TensorError('TENSOR_SHAPE', name, 'must be [B, T]', '[B, T]', fmtShape(t.shape));
  return t.shape as [number, number];
}

/** Host: the LM mask `[ones(Q) ; textMask]` [B, Q + T] (int32). */
export function softPromptMask(queryLength: number, textMask: HostTensor): HostTensor<'I32'> {
  const [b, t] = checkMatrix('attention_mask', textMask);
  const m = toInt32(textMask, 'attention_mask');
  const l = queryLength + t;
  const out = new Int32Array(b * l);
  for (let r = 0; r < b; r++) {
    out.fill(1, r * l, r * l + queryLength);
    out.set(m.subarray(r * t, (r + 1) * t), r * l + queryLength);
  }
  return { dtype: 'I32', shape: [b, l], data: out };
}

/** Options of {@link decoderOnlyLabels}. */
export interface DecoderOnlyLabelOptions {
  /** Q: prepend Q positions of -100 for the soft prompt (labels [B, Q + T]); default 0 (labels [B, T]). */
  readonly queryLength?: number;
  /**
   * Prompt tokens per row (one number for all rows, or one per row), counted from the row's first
   * real token (so left padding works): they get -100. Include the BOS token when it is part of
   * the prompt (LAVIS counts it). Default 0.
   */
  readonly promptLength?: number | readonly number[];
}

/**
 * Host: decoder-only labels from the text ids: `ids` where the mask is 1, -100 on padding, on the
 * prompt tokens and on `queryLength` leading soft-prompt positions.
 *
 * HF's BLIP-2 loss aligns `labels` [B, T] with the last T logits, so text-only labels
 * (`queryLength` 0) and labels over `[Q + T]` both work; with full-length labels the last query
 * position would predict the first text label, so keep that label -100 (a prompt of >= 1 token, e.g.
 * the BOS, does it).
 * @param inputIds int [B, T]
 * @param attentionMask int [B, T]
 * @returns int32 [B, Q + T]
 */
export function decoderOnlyLabels(
  inputIds: HostTensor,
  attentionMask: HostTensor,
  options: DecoderOnlyLabelOptions = {},
): HostTensor<'I32'> {
  const [b, t] = checkMatrix('input_ids', inputIds);
  const [mb, mt] = checkMatrix('attention_mask', attentionMask);
  if (mb !== b || mt !== t)
    throw new TensorError(
      'TENSOR_SHAPE',
      'attention_mask',
      'must match input_ids',
      fmtShape([b, t]),
      fmtShape([mb, mt]),
    );
  const q = options.queryLength ?? 0;
  const prompt = options.promptLength ?? 0;
  if (typeof prompt !== 'number' && prompt.length !== b)
    throw new TensorError(
      'TENSOR_SHAPE',
      'promptLength',
      'one prompt length per row',
      `${b}`,
      `${prompt.length}`,
    );
  const ids = toInt32(inputIds, 'input_ids');
  const mask = toInt32(attentionMask, 'attention_mask');
  const l = q + t;
  const out = new Int32Array(b * l).fill(IGNORE_INDEX);
  for (let r = 0; r < b; r++) {
    const skip = typeof prompt === 'number' ? prompt : (prompt[r] ?? 0);
    let seen = 0;
    for (let j = 0; j < t; j++) {
      if (!mask[r * t + j]) continue;
      if (seen++ < skip) continue;
      out[r * l + q + j] = ids[r * t + j] as number;
    }
  }
  return { dtype: 'I32', shape: [b, l], data: out };
}
