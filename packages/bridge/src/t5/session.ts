import type { Backend, ParamStore } from '@qf/core';
import { type HostTensor, QfError, TensorError, fmtShape, isFloatDType, toFloat32, toInt32 } from '@qf/io';
import type { DecodingSession } from '../lm/types.js';
import type { T5Config } from './config.js';
import { T5_GRAPH_KEYS, crossName, pastName, presentName, t5DecoderGraph, t5EncoderGraph } from './graphs.js';

/** A T5 decoding session's encoder input given as embeddings. */
export interface T5EmbedsInput {
  /** [B, S, d_model] float: e.g. `[soft prompt ; embed(prompt ids)]`. */
  readonly inputsEmbeds: HostTensor;
  /** [B, S] 1 = real token, 0 = padding (any integer or float dtype); default all ones. */
  readonly attentionMask?: HostTensor | undefined;
}

/**
 * A T5 decoding session's encoder input as BLIP-2 builds it (HF `Blip2ForConditionalGeneration
 * .generate`): `[soft prompt ; embed(input_ids)]`, mask `[ones(Q) ; attention_mask]`, assembled in
 * the encoder graph. BLIP-2 without a prompt uses `input_ids = [[bos]] * B`.
 */
export interface T5PromptInput {
  /** float [B, Q, d_model]: the projected query outputs; omitted for a text-only prompt. */
  readonly softPrompt?: HostTensor | undefined;
  /** int [B, T] prompt ids; omitted for the soft prompt alone. */
  readonly inputIds?: HostTensor | undefined;
  /** [B, T] 1 = token, 0 = padding, for `inputIds` (default all ones). */
  readonly attentionMask?: HostTensor | undefined;
}

/** What a T5 decoding session starts from: the encoder input of every row. */
export type T5SessionInputs = T5EmbedsInput | T5PromptInput;

/** The encoder graph's host inputs, its key, and the [B, S] mask the decoder steps reuse. */
interface EncoderFeed {
  readonly key: string;
  readonly inputs: Record<string, HostTensor>;
  readonly mask: HostTensor<'I32'>;
}

function shapeError(name: string, message: string, expected: string, actual: readonly number[]): TensorError {
  return new TensorError('TENSOR_SHAPE', name, message, expected, fmtShape(actual));
}

function maskRows(m: HostTensor | undefined, name: string, rows: number, width: number): Int32Array {
  if (!m) return new Int32Array(rows * width).fill(1);
  if (m.shape.length !== 2 || m.shape[0] !== rows || m.shape[1] !== width)
    throw shapeError(name, 'must be [B, T] like its tokens', fmtShape([rows, width]), m.shape);
  return isFloatDType(m.dtype) ? Int32Array.from(toFloat32(m)) : toInt32(m, name);
}

function checkFloat3(t: HostTensor, name: string, d: number): [number, number] {
  if (!isFloatDType(t.dtype))
    throw new TensorError('TENSOR_DTYPE', name, 'must be a float tensor', 'F32|F16|BF16', t.dtype);
  if (t.shape.length !== 3 || t.shape[2] !== d || (t.shape[0] ?? 0) < 1)
    throw shapeError(name, 'must be [B, L, d_model] with B >= 1', `[B, L, ${d}]`, t.shape);
  return [t.shape[0] as number, t.shape[1] as number];
}

/** Validates the session inputs and lays out the encoder graph's feed. */
function encoderFeed(inputs: T5SessionInputs, d: number, vocabSize: number): EncoderFeed {
  if ('inputsEmbeds' in inputs && inputs.inputsEmbeds) {
    const [b, s] = checkFloat3(inputs.inputsEmbeds, 'inputs_embeds', d);
    if (s < 1)
      throw shapeError('inputs_embeds', 'needs at least one position', `[${b}, >= 1, ${d}]`, [b, s, d]);
    const mask: HostTensor<'I32'> = {
      dtype: 'I32',
      shape: [b, s],
      data: maskRows(inputs.attentionMask, 'attention_mask', b, s),
    };
    return {
      key: T5_GRAPH_KEYS.encoder,
      inputs: { inputs_embeds: inputs.inputsEmbeds, attention_mask: mask },
      mask,
    };
  }
  const p = inputs as T5PromptInput;
  const soft = p.softPrompt ? checkFloat3(p.softPrompt, 'soft_prompt', d) : undefined;
  const ids = p.inputIds;
  if (ids && (ids.shape.length !== 2 || isFloatDType(ids.dtype)))
    throw shapeError('input_ids', 'must be int [B, T]', '[B, T]', ids.shape);
  const b = soft?.[0] ?? ids?.shape[0] ?? 0;
  const q = soft?.[1] ?? 0;
  const t = ids?.shape[1] ?? 0;
  if (ids && ids.shape[0] !== b)
    throw shapeError('input_ids', 'batch differs from soft_prompt', `[${b}, T]`, ids.shape);
  if (b < 1 || q + t < 1)
    throw new TensorError(
      'TENSOR_MISSING',
      'input_ids',
      'the prompt needs a soft prompt and/or ids (B, length >= 1)',
    );
  if (ids)
    for (const id of toInt32(ids, 'input_ids'))
      if (!(id >= 0 && id < vocabSize))
        throw new TensorError(
          'TENSOR_VALUE',
          'input_ids',
          'token id out of range',
          `0..${vocabSize - 1}`,
          String(id),
        );
  const text = ids ? maskRows(p.attentionMask, 'attention_mask', b, t) : undefined;
  const data = new Int32Array(b * (q + t));
  for (let r = 0; r < b; r++) {
    data.fill(1, r * (q + t), r * (q + t) + q);
    if (text) data.set(text.subarray(r * t, (r + 1) * t), r * (q + t) + q);
  }
  const mask: HostTensor<'I32'> = { dtype: 'I32', shape: [b, q + t], data };
  const feed: Record<string, HostTensor> = { attention_mask: mask };
  if (p.softPrompt) feed['soft_prompt'] = p.softPrompt;
  if (ids) feed['lm_input_ids'] = ids;
  const key = `${T5_GRAPH_KEYS.encoder}:${p.softPrompt ? 's' : ''}${ids ? 't' : ''}`;
  return { key, inputs: feed, mask };
}

type AnyArray = HostTensor['data'];

/** New tensor whose row i (dim 0) is row `index[i]` of `t`. */
export function gatherRows<D extends HostTensor['dtype']>(
  t: HostTensor<D>,
  index: Int32Array,
): HostTensor<D> {
  const rows = t.shape[0] ?? 0;
  const width = rows === 0 ? 0 : t.data.length / rows;
  const src = t.data as AnyArray;
  const ctor = src.constructor as new (n: number) => AnyArray;
  const out = new ctor(index.length * width);
  index.forEach((r, i) => {
    (out as Float32Array).set((src as Float32Array).subarray(r * width, (r + 1) * width), i * width);
  });
  return { dtype: t.dtype, shape: [index.length, ...t.shape.slice(1)], data: out as HostTensor<D>['data'] };
}

function usage(message: string): QfError {
  return new QfError('MODEL_USAGE', message);
}

/**
 * Host-level T5 decoding over any {@link Backend}: `prefill` runs the encoder once (`t5:encoder`,
 * which also projects the cross-attention keys/values of every decoder block) and the first decoder
 * step from `decoder_start_token_id` (`t5:decoder-first`); each `step` runs `t5:decoder-step` with
 * the self-attention cache. The cache, the cross-attention K/V and the encoder mask live on the host
 * between calls (plain typed arrays), so nothing stays allocated in the backend and `reorder` is a
 * row gather.
 */
export class T5DecodingSession<T> implements DecodingSession {
  readonly vocabSize: number;
  private rowCount: number;
  private mask: HostTensor<'I32'>;
  private readonly feed: EncoderFeed;
  private cross = new Map<string, HostTensor>();
  private past = new Map<string, HostTensor>();
  private hidden: HostTensor | undefined;
  private state: 'new' | 'ready' | 'disposed' = 'new';

  constructor(
    private readonly backend: Backend<T>,
    private readonly params: ParamStore<T>,
    private readonly cfg: T5Config,
    inputs: T5SessionInputs,
  ) {
    this.vocabSize = cfg.vocabSize;
    this.feed = encoderFeed(inputs, cfg.dModel, cfg.vocabSize);
    this.mask = this.feed.mask;
    this.rowCount = this.mask.shape[0] as number;
  }

  get rows(): number {
    return this.rowCount;
  }

  /** The encoder output [B, S, d_model] of the rows given at creation (set by `prefill`). */
  get encoderLastHiddenState(): HostTensor | undefined {
    return this.hidden;
  }

  async prefill(): Promise<Float32Array> {
    if (this.state !== 'new')
      throw usage(`T5 session: prefill() must be called once, first (state: ${this.state})`);
    const start = this.cfg.decoderStartTokenId;
    if (start === undefined)
      throw usage('T5 session: the config has no decoder_start_token_id (nor bos_token_id) to start from');
    const encoderGraph = t5EncoderGraph(this.cfg, this.params);
    const enc = await this.backend.run(this.feed.key, encoderGraph, this.feed.inputs);
    this.checkAlive();
    this.hidden = enc['encoder_last_hidden_state'];
    for (let i = 0; i < this.cfg.numDecoderLayers; i++)
      for (const w of ['key', 'value'] as const) {
        const t = enc[crossName(i, w)];
        if (!t)
          throw new TensorError('TENSOR_MISSING', crossName(i, w), 'the encoder graph returned no cross K/V');
        this.cross.set(crossName(i, w), t);
      }
    const logits = await this.decode(new Int32Array(this.rowCount).fill(start), false);
    this.state = 'ready';
    return logits;
  }

  async step(tokens: Int32Array): Promise<Float32Array> {
    if (this.state !== 'ready')
      throw usage(`T5 session: step() needs a prefilled, live session (state: ${this.state})`);
    if (tokens.length !== this.rowCount)
      throw new TensorError(
        'TENSOR_SHAPE',
        'tokens',
        'one token per row',
        `[${this.rowCount}]`,
        `[${tokens.length}]`,
      );
    for (const t of tokens)
      if (!(t >= 0 && t < this.vocabSize))
        throw new TensorError(
          'TENSOR_VALUE',
          'tokens',
          'token id out of range',
          `0..${this.vocabSize - 1}`,
          String(t),
        );
    return this.decode(tokens, true);
  }

  reorder(index: Int32Array): void {
    if (this.state !== 'ready')
      throw usage(`T5 session: reorder() needs a prefilled, live session (state: ${this.state})`);
    if (index.length < 1) throw new TensorError('TENSOR_SHAPE', 'index', 'at least one row', '[>= 1]', '[0]');
    for (const r of index)
      if (!(Number.isInteger(r) && r >= 0 && r < this.rowCount))
        throw new TensorError(
          'TENSOR_VALUE',
          'index',
          'row index out of range',
          `0..${this.rowCount - 1}`,
          String(r),
        );
    const all = [this.cross, this.past];
    for (const map of all) for (const [k, t] of map) map.set(k, gatherRows(t, index));
    this.mask = gatherRows(this.mask, index);
    this.rowCount = index.length;
  }

  dispose(): void {
    this.state = 'disposed';
    this.cross.clear();
    this.past.clear();
    this.hidden = undefined;
  }

  private async decode(tokens: Int32Array, withPast: boolean): Promise<Float32Array> {
    const inputs: Record<string, HostTensor> = {
      decoder_input_ids: { dtype: 'I32', shape: [this.rowCount, 1], data: tokens.slice() },
      encoder_attention_mask: this.mask,
    };
    for (const [k, t] of this.cross) inputs[k] = t;
    if (withPast) for (const [k, t] of this.past) inputs[k] = t;
    const key = withPast ? T5_GRAPH_KEYS.decoderStep : T5_GRAPH_KEYS.decoderFirst;
    const out = await this.backend.run(key, t5DecoderGraph(this.cfg, this.params, withPast), inputs);
    this.checkAlive();
    const next = new Map<string, HostTensor>();
    for (let i = 0; i < this.cfg.numDecoderLayers; i++)
      for (const w of ['key', 'value'] as const) {
        const t = out[presentName(i, w)];
        if (!t)
          throw new TensorError('TENSOR_MISSING', presentName(i, w), 'the decoder graph returned no cache');
        next.set(pastName(i, w), t);
      }
    this.past = next;
    const logits = out['logits'];
    if (!logits) throw new TensorError('TENSOR_MISSING', 'logits', 'the decoder graph returned no logits');
    return toFloat32(logits); // [rows, 1, V]
  }

  private checkAlive(): void {
    if (this.state === 'disposed') throw usage('T5 session: disposed while a call was running');
  }
}
