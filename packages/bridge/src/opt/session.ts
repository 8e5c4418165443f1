import type { Backend, GraphFn, Ops, ParamStore } from '@qf/core';
import { type HostTensor, TensorError, fmtShape, toFloat32, toInt32 } from '@qf/io';
import type { DecodingSession, KvPair } from '../lm/types.js';
import type { OptLanguageModel } from './lm.js';
import { optPositionIds } from './positions.js';

/**
 * The prompt of a decoder-only generation, as BLIP-2 builds it (HF `Blip2ForConditionalGeneration
 * .generate`): `inputs_embeds = [soft prompt ; embed(input_ids)]`, mask `[ones(Q) ; attention_mask]`.
 */
export interface DecoderOnlyPrompt {
  /** float [B, Q, D]: the projected query outputs; omitted for a text-only prompt. */
  readonly softPrompt?: HostTensor | undefined;
  /**
   * int [B, T] prompt ids (BLIP-2 without a prompt: `[[bos]] * B`). Padding may be on either side;
   * omitted: the soft prompt alone.
   */
  readonly inputIds?: HostTensor | undefined;
  /** int [B, T]: 1 = token, 0 = padding, for `inputIds` (default all ones). */
  readonly attentionMask?: HostTensor | undefined;
}

function shapeError(name: string, message: string, expected: string, actual: readonly number[]): TensorError {
  return new TensorError('TENSOR_SHAPE', name, message, expected, fmtShape(actual));
}

/** Names of the graph inputs/outputs (distinct from the Q-Former's `input_ids`/`attention_mask`). */
const IN = { softPrompt: 'soft_prompt', ids: 'lm_input_ids', mask: 'lm_attention_mask', pos: 'position_ids' };
const pastKey = (i: number) => `past_key.${i}`;
const pastValue = (i: number) => `past_value.${i}`;
const presentKey = (i: number) => `present_key.${i}`;
const presentValue = (i: number) => `present_value.${i}`;

/** Outputs shared by the prefill and step graphs: last-position logits and the new cache. */
function cacheOutputs<T>(logits: T, present: readonly KvPair<T>[]): Record<string, T> {
  const out: Record<string, T> = { logits };
  present.forEach((p, i) => {
    out[presentKey(i)] = p.key;
    out[presentValue(i)] = p.value;
  });
  return out;
}

/**
 * Prefill graph: inputs `soft_prompt` [B, Q, D] and/or `lm_input_ids` [B, T], `lm_attention_mask`
 * [B, L], `position_ids` [B, L] (L = Q + T); outputs `logits` [B, V] of the last position and
 * `present_key.{i}` / `present_value.{i}` [B, heads, L, headDim].
 */
export function optPrefillGraph<T>(lm: OptLanguageModel, params: ParamStore<T>): GraphFn<T> {
  return (ops: Ops<T>, inputs: Record<string, T>) => {
    const parts: T[] = [];
    const soft = inputs[IN.softPrompt];
    const ids = inputs[IN.ids];
    if (soft) parts.push(soft);
    if (ids) parts.push(lm.embed(ops, params, ids));
    const first = parts[0];
    if (!first) throw new TensorError('TENSOR_MISSING', IN.ids, 'the prefill graph needs soft_prompt or ids');
    const inputsEmbeds = parts.length === 1 ? first : ops.concat(parts, 1);
    const out = lm.forward(
      ops,
      params,
      { inputsEmbeds, attentionMask: inputs[IN.mask] as T, positionIds: inputs[IN.pos] as T },
      { lastOnly: true },
    );
    return cacheOutputs(out.logits, out.present);
  };
}

/**
 * Step graph: inputs `lm_input_ids` [B, 1], `lm_attention_mask` [B, P + 1], `position_ids` [B, 1],
 * `past_key.{i}` / `past_value.{i}` [B, heads, P, headDim]; outputs as {@link optPrefillGraph}.
 */
export function optStepGraph<T>(lm: OptLanguageModel, params: ParamStore<T>): GraphFn<T> {
  return (ops: Ops<T>, inputs: Record<string, T>) => {
    const past: KvPair<T>[] = [];
    for (let i = 0; i < lm.shape.numLayers; i++)
      past.push({ key: inputs[pastKey(i)] as T, value: inputs[pastValue(i)] as T });
    const out = lm.forward(
      ops,
      params,
      {
        inputsEmbeds: lm.embed(ops, params, inputs[IN.ids] as T),
        attentionMask: inputs[IN.mask] as T,
        positionIds: inputs[IN.pos] as T,
        past,
      },
      { lastOnly: true },
    );
    return cacheOutputs(out.logits, out.present);
  };
}

/**
 * A {@link DecodingSession} for OPT on any backend: each call is one `backend.run` (graph keys
 * `opt:prefill:*` and `opt:step`); the KV cache, attention mask and positions live on the host between
 * calls, so the session holds no backend memory. Positions follow HF `generate`
 * (`cumsum(mask) - 1`, padding -> 1); the next-token logits are those of the last position of every
 * row, padded or not, as in HF.
 */
export class OptDecodingSession<T> implements DecodingSession {
  readonly vocabSize: number;
  private rowCount: number;
  /** Attention mask over every position so far, row-major [rows, length]. */
  private mask: Int32Array;
  private length: number;
  private cache: { key: Float32Array; value: Float32Array }[] = [];
  private state: 'new' | 'ready' | 'disposed' = 'new';
  private readonly prompt: DecoderOnlyPrompt;

  constructor(
    private readonly lm: OptLanguageModel,
    private readonly backend: Backend<T>,
    private readonly params: ParamStore<T>,
    prompt: DecoderOnlyPrompt,
  ) {
    this.vocabSize = lm.shape.vocabSize;
    const { rows, queries, textMask, textLength } = checkPrompt(prompt, lm.shape.hiddenSize);
    this.rowCount = rows;
    this.length = queries + textLength;
    this.mask = new Int32Array(rows * this.length);
    for (let r = 0; r < rows; r++) {
      const row = this.mask.subarray(r * this.length, (r + 1) * this.length);
      row.fill(1, 0, queries);
      if (textMask) row.set(textMask.subarray(r * textLength, (r + 1) * textLength), queries);
      else row.fill(1, queries);
    }
    this.prompt = prompt;
  }

  get rows(): number {
    return this.rowCount;
  }

  /** The attention mask over all positions so far (soft prompt, prompt, generated), [rows, length]. */
  attentionMask(): HostTensor<'I32'> {
    return { dtype: 'I32', shape: [this.rowCount, this.length], data: this.mask.slice() };
  }

  async prefill(): Promise<Float32Array> {
    this.expectState('new', 'prefill');
    const mask: HostTensor<'I32'> = { dtype: 'I32', shape: [this.rowCount, this.length], data: this.mask };
    const inputs: Record<string, HostTensor> = {
      [IN.mask]: mask,
      [IN.pos]: optPositionIds(mask, 'generate'),
    };
    if (this.prompt.softPrompt) inputs[IN.softPrompt] = this.prompt.softPrompt;
    if (this.prompt.inputIds) inputs[IN.ids] = this.prompt.inputIds;
    const key = `opt:prefill:${this.prompt.softPrompt ? 's' : ''}${this.prompt.inputIds ? 't' : ''}`;
    const out = await this.backend.run(key, optPrefillGraph(this.lm, this.params), inputs);
    this.state = 'ready';
    return this.takeOutputs(out);
  }

  async step(tokens: Int32Array): Promise<Float32Array> {
    this.expectState('ready', 'step');
    const rows = this.rowCount;
    if (tokens.length !== rows)
      throw new TensorError('TENSOR_SHAPE', 'tokens', 'one token per row', `[${rows}]`, `[${tokens.length}]`);
    const len = this.length + 1;
    const mask = new Int32Array(rows * len);
    const positions = new Int32Array(rows);
    for (let r = 0; r < rows; r++) {
      const row = this.mask.subarray(r * this.length, (r + 1) * this.length);
      mask.set(row, r * len);
      mask[r * len + this.length] = 1;
      let sum = 1;
      for (const m of row) sum += m;
      positions[r] = sum - 1; // cumsum(mask) - 1 at the new (real) position
    }
    const inputs: Record<string, HostTensor> = {
      [IN.ids]: { dtype: 'I32', shape: [rows, 1], data: tokens.slice() },
      [IN.mask]: { dtype: 'I32', shape: [rows, len], data: mask },
      [IN.pos]: { dtype: 'I32', shape: [rows, 1], data: positions },
    };
    const { numHeads, headDim } = this.lm.shape;
    const cacheShape = [rows, numHeads, this.length, headDim];
    this.cache.forEach((c, i) => {
      inputs[pastKey(i)] = { dtype: 'F32', shape: cacheShape, data: c.key };
      inputs[pastValue(i)] = { dtype: 'F32', shape: cacheShape, data: c.value };
    });
    const out = await this.backend.run('opt:step', optStepGraph(this.lm, this.params), inputs);
    this.mask = mask;
    this.length = len;
    return this.takeOutputs(out);
  }

  reorder(index: Int32Array): void {
    this.expectState('ready', 'reorder');
    for (const i of index)
      if (!(i >= 0 && i < this.rowCount))
        throw new TensorError(
          'TENSOR_VALUE',
          'index',
          'row index out of range',
          `0..${this.rowCount - 1}`,
          `${i}`,
        );
    this.mask = gatherRows(this.mask, this.length, index);
    const block = this.lm.shape.numHeads * this.length * this.lm.shape.headDim;
    this.cache = this.cache.map((c) => ({
      key: gatherRows(c.key, block, index),
      value: gatherRows(c.value, block, index),
    }));
    this.rowCount = index.length;
  }

  dispose(): void {
    this.cache = [];
    this.mask = new Int32Array(0);
    this.state = 'disposed';
  }

  private takeOutputs(out: Record<string, HostTensor>): Float32Array {
    this.cache = [];
    for (let i = 0; i < this.lm.shape.numLayers; i++) {
      const key = out[presentKey(i)];
      const value = out[presentValue(i)];
      if (!key || !value)
        throw new TensorError('TENSOR_MISSING', presentKey(i), 'the graph returned no cache');
      this.cache.push({ key: toFloat32(key), value: toFloat32(value) });
    }
    const logits = out['logits'];
    if (!logits) throw new TensorError('TENSOR_MISSING', 'logits', 'the graph returned no logits');
    return toFloat32(logits);
  }

  private expectState(state: 'new' | 'ready', call: string): void {
    if (this.state === state) return;
    const why =
      this.state === 'disposed'
        ? 'the session is disposed'
        : state === 'new'
          ? 'prefill ran already'
          : 'call prefill first';
    throw new Error(`OptDecodingSession.${call}: ${why}`);
  }
}

/** New row i := rows[index[i]] of a row-major buffer with `width` elements per row. */
function gatherRows<A extends Int32Array | Float32Array>(src: A, width: number, index: Int32Array): A {
  const out = new (src.constructor as { new (n: number): A })(index.length * width);
  index.forEach((from, to) => {
    out.set(src.subarray(from * width, (from + 1) * width), to * width);
  });
  return out;
}

/** Validates a prompt; returns its sizes and the text mask as int32 (undefined: all ones). */
function checkPrompt(
  p: DecoderOnlyPrompt,
  width: number,
): { rows: number; queries: number; textLength: number; textMask: Int32Array | undefined } {
  let rows: number | undefined;
  let queries = 0;
  let textLength = 0;
  if (p.softPrompt) {
    const s = p.softPrompt.shape;
    if (s.length !== 3 || s[2] !== width)
      throw shapeError('soft_prompt', 'must be [B, Q, hidden]', `[B, Q, ${width}]`, s);
    rows = s[0];
    queries = s[1] as number;
  }
  if (p.inputIds) {
    const s = p.inputIds.shape;
    if (s.length !== 2 || (rows !== undefined && s[0] !== rows))
      throw shapeError(
        'input_ids',
        'must be [B, T] with the batch of the soft prompt',
        `[${rows ?? 'B'}, T]`,
        s,
      );
    rows = s[0];
    textLength = s[1] as number;
    toInt32(p.inputIds, 'input_ids');
  }
  if (rows === undefined || rows < 1 || queries + textLength < 1)
    throw new TensorError('TENSOR_MISSING', 'input_ids', 'a prompt needs a soft prompt or ids (non-empty)');
  let textMask: Int32Array | undefined;
  if (p.attentionMask) {
    const s = p.attentionMask.shape;
    if (!p.inputIds || s.length !== 2 || s[0] !== rows || s[1] !== textLength)
      throw shapeError('attention_mask', 'must match input_ids', `[${rows}, ${textLength}]`, s);
    textMask = toInt32(p.attentionMask, 'attention_mask');
  }
  return { rows, queries, textLength, textMask };
}
