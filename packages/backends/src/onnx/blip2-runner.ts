import {
  type DecodingSession,
  type GenerateOptions,
  type GenerateResult,
  OptLanguageModel,
  T5LanguageModel,
  blip2DecoderOnlyLengths,
  bosPrompt,
  generate,
  withPrompt,
} from '@qf/bridge';
import { type Backend, type GraphFn, type Ops, type ParamStore, paramStore } from '@qf/core';
import type { HostTensor } from '@qf/io';
import { OnnxBackendError } from './errors.js';
import type { Blip2OnnxManifest } from './export-blip2.js';
import { type InferenceSession, type OrtModule, type Tensor, fromOrtTensor, toOrtTensor } from './ort.js';

/** Options of {@link OnnxFileBackend}. */
export interface OnnxFileBackendOptions {
  /** `await import('onnxruntime-node')` or `onnxruntime-web`. */
  readonly ort: OrtModule;
  /** Graph key -> the model to open for it: a path (Node), a URL (browsers) or the bytes. */
  readonly graphs: Readonly<Record<string, string | Uint8Array>>;
  /** Threads per operator (ORT `intraOpNumThreads`). */
  readonly intraOpNumThreads?: number;
  /** Extra ORT session options (merged last). */
  readonly sessionOptions?: InferenceSession.SessionOptions;
}

/**
 * A `Backend` whose graphs are exported ONNX files: `run(key, fn, inputs)` ignores `fn` and runs the
 * file registered for `key` (one ORT session per key, created on first use). So host-level code
 * written against `Backend` (`OptDecodingSession`, `T5DecodingSession`, `generate`) runs unchanged on
 * the files of `writeBlip2Onnx`, with no weights in JS memory. It has no parameters and no ops.
 */
export class OnnxFileBackend implements Backend<unknown> {
  readonly name = 'onnx-files';
  private readonly sessions = new Map<string, Promise<InferenceSession>>();
  private disposed = false;

  constructor(private readonly options: OnnxFileBackendOptions) {}

  /** Not available: this backend runs finished graphs only. */
  get ops(): Ops<unknown> {
    throw new OnnxBackendError('ONNX_TRACE', 'an OnnxFileBackend runs exported files; it has no ops');
  }

  /** Graph keys this backend can run. */
  get keys(): string[] {
    return Object.keys(this.options.graphs);
  }

  /** Number of open ORT sessions. */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Only an empty store: exported graphs hold their weights. */
  createParams(tensors: ReadonlyMap<string, HostTensor>): ParamStore<unknown> {
    this.checkAlive();
    if (tensors.size > 0)
      throw new OnnxBackendError('ONNX_TRACE', 'an OnnxFileBackend takes no parameters (the files hold them)');
    return paramStore(new Map<string, unknown>());
  }

  disposeParams(): void {}

  async run<K extends string>(
    key: string,
    _fn: GraphFn<unknown, K>,
    inputs: Record<string, HostTensor>,
  ): Promise<Record<K, HostTensor>> {
    const session = await this.session(key);
    const feeds: Record<string, Tensor> = {};
    for (const name of session.inputNames) {
      const t = inputs[name];
      if (!t)
        throw new OnnxBackendError('ONNX_RUNTIME', `graph "${key}" needs input "${name}", which was not given`);
      feeds[name] = toOrtTensor(this.options.ort, name, t);
    }
    const extra = Object.keys(inputs).filter((n) => !session.inputNames.includes(n));
    if (extra.length > 0)
      throw new OnnxBackendError('ONNX_RUNTIME', `graph "${key}" has no input(s) ${extra.join(', ')}`);
    let results: InferenceSession.ReturnType;
    try {
      results = await session.run(feeds);
    } catch (e) {
      throw new OnnxBackendError('ONNX_RUNTIME', `ONNX Runtime failed to run "${key}": ${(e as Error).message}`, {
        cause: e,
      });
    }
    const out: Record<string, HostTensor> = {};
    for (const [name, t] of Object.entries(results)) out[name] = fromOrtTensor(name, t);
    return out as Record<K, HostTensor>;
  }

  /** The session of `key`, opened on first use. */
  session(key: string): Promise<InferenceSession> {
    this.checkAlive();
    let s = this.sessions.get(key);
    if (!s) {
      const model = this.options.graphs[key];
      if (model === undefined)
        throw new OnnxBackendError(
          'ONNX_RUNTIME',
          `no exported graph for key "${key}" (have: ${this.keys.join(', ')})`,
        );
      const o = this.options;
      const opts: InferenceSession.SessionOptions = {
        ...(o.intraOpNumThreads !== undefined
          ? { intraOpNumThreads: o.intraOpNumThreads, interOpNumThreads: 1 }
          : {}),
        ...o.sessionOptions,
      };
      s = o.ort.InferenceSession.create(model, opts);
      this.sessions.set(key, s);
      s.catch(() => this.sessions.delete(key));
    }
    return s;
  }

  /** Releases every session; later calls throw `ONNX_DISPOSED`. */
  async dispose(): Promise<void> {
    this.disposed = true;
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(all.map((s) => s.then((x) => x.release(), () => undefined)));
  }

  private checkAlive(): void {
    if (this.disposed) throw new OnnxBackendError('ONNX_DISPOSED', 'the onnx file backend was disposed');
  }
}

/** What to caption: images and, optionally, an LM prompt and (InstructBLIP) an instruction. */
export interface Blip2CaptionInputs {
  /** float32 [B, 3, S, S], preprocessed as `manifest.preprocessing` says. */
  readonly pixelValues: HostTensor;
  /** int [B, T] LM prompt ids (default: `[[bos]] * B`). */
  readonly inputIds?: HostTensor | undefined;
  /** int [B, T] (default all ones). */
  readonly attentionMask?: HostTensor | undefined;
  /** InstructBLIP: int [B, T'] instruction ids for the Q-Former (required there). */
  readonly qformerInputIds?: HostTensor | undefined;
  readonly qformerAttentionMask?: HostTensor | undefined;
}

/** Generation settings (HF names); BLIP-2's own length bookkeeping is applied for decoder-only LMs. */
export type Blip2GenerateOptions = Pick<
  GenerateOptions,
  'maxNewTokens' | 'numBeams' | 'lengthPenalty' | 'earlyStopping' | 'numReturnSequences' | 'minNewTokens'
> & { readonly minLength?: number; readonly maxLength?: number };

/** {@link GenerateResult} plus the sequences as HF `generate` returns them. */
export interface Blip2CaptionResult extends GenerateResult {
  /** Decoder-only: prompt ids + new tokens; encoder-decoder: decoder start id + new tokens. */
  readonly fullSequences: HostTensor<'I32'>;
  /** The soft prompt the LM was given, [B, Q, lm_hidden]. */
  readonly softPrompt: HostTensor;
}

/**
 * Captioning from the files of `writeBlip2Onnx`: vision -> Q-Former + projector -> LM generation
 * (greedy or beam search over the exported prefill/step or T5 encoder/decoder graphs), with the
 * host-side decoding of `@qf/bridge` and no model weights in JS. Open one with `openBlip2Onnx`
 * (`@qf/backends/onnx/node`) or from a manifest and file locations.
 */
export class Blip2OnnxRunner {
  readonly lm: OptLanguageModel | T5LanguageModel;
  private readonly params: ParamStore<unknown>;

  constructor(
    readonly manifest: Blip2OnnxManifest,
    readonly backend: OnnxFileBackend,
  ) {
    if (manifest.format !== 'qformer-ts-blip2-onnx/1')
      throw new OnnxBackendError('ONNX_RUNTIME', `not a BLIP-2 ONNX manifest (format ${String(manifest.format)})`);
    this.lm =
      manifest.config.lm.kind === 'decoder-only'
        ? OptLanguageModel.fromTextConfig(manifest.textConfig)
        : T5LanguageModel.fromTextConfig(manifest.textConfig);
    this.params = backend.createParams(new Map());
  }

  /**
   * A runner over the files named by `manifest`, each opened from `locate(file)` (a path or URL).
   * @example
   * ```ts
   * const runner = Blip2OnnxRunner.create(manifest, { ort, locate: (f) => `${base}/${f}` });
   * ```
   */
  static create(
    manifest: Blip2OnnxManifest,
    options: Omit<OnnxFileBackendOptions, 'graphs'> & { locate(file: string): string | Uint8Array },
  ): Blip2OnnxRunner {
    const graphs: Record<string, string | Uint8Array> = {};
    for (const p of manifest.parts) graphs[p.graphKey] = options.locate(p.file);
    const { locate: _, ...rest } = options;
    return new Blip2OnnxRunner(manifest, new OnnxFileBackend({ ...rest, graphs }));
  }

  private key(part: string): string {
    const p = this.manifest.parts.find((x) => x.part === part);
    if (!p) throw new OnnxBackendError('ONNX_RUNTIME', `the export has no "${part}" part`);
    return p.graphKey;
  }

  /** `vision` part: pixel_values [B, 3, S, S] -> vision_output [B, N + 1, D]. */
  async vision(pixelValues: HostTensor): Promise<HostTensor> {
    const out = await this.backend.run(this.key('vision'), noGraph, { pixel_values: pixelValues });
    return out['vision_output'] as HostTensor;
  }

  /** `qformer_projector` part: image features (+ instruction) -> query_output, language_projection. */
  async qformerProjector(
    imageEmbeds: HostTensor,
    instruction?: { inputIds: HostTensor; attentionMask?: HostTensor | undefined },
  ): Promise<{ query_output: HostTensor; language_projection: HostTensor }> {
    const inputs: Record<string, HostTensor> = { image_embeds: imageEmbeds };
    if (this.manifest.config.qformer.instruction) {
      if (!instruction)
        throw new OnnxBackendError('ONNX_RUNTIME', 'InstructBLIP needs qformerInputIds (the instruction)');
      inputs['qformer_input_ids'] = instruction.inputIds;
      inputs['qformer_attention_mask'] = instruction.attentionMask ?? ones(instruction.inputIds);
    }
    const out = await this.backend.run(this.key('qformer_projector'), noGraph, inputs);
    return { query_output: out['query_output'] as HostTensor, language_projection: out['language_projection'] as HostTensor };
  }

  /** A decoding session of the exported LM over a soft prompt and prompt ids (see `@qf/bridge`). */
  session(softPrompt: HostTensor, inputIds: HostTensor, attentionMask?: HostTensor): DecodingSession {
    const prompt = { softPrompt, inputIds, attentionMask };
    return this.lm instanceof OptLanguageModel
      ? this.lm.session(this.backend, this.params, prompt)
      : this.lm.session(this.backend, this.params, prompt);
  }

  /** Images -> captions, as HF `Blip2ForConditionalGeneration.generate` / InstructBLIP's. */
  async generate(inputs: Blip2CaptionInputs, options: Blip2GenerateOptions): Promise<Blip2CaptionResult> {
    const rows = inputs.pixelValues.shape[0] as number;
    const imageEmbeds = await this.vision(inputs.pixelValues);
    const instruction = inputs.qformerInputIds
      ? { inputIds: inputs.qformerInputIds, attentionMask: inputs.qformerAttentionMask }
      : undefined;
    const { language_projection: softPrompt } = await this.qformerProjector(imageEmbeds, instruction);
    const bos = this.lm.tokens.bos;
    if (!inputs.inputIds && bos === undefined)
      throw new OnnxBackendError('ONNX_RUNTIME', 'no prompt given and the LM config has no bos_token_id');
    const ids = inputs.inputIds ?? bosPrompt(rows, bos as number);
    const session = this.session(softPrompt, ids, inputs.attentionMask);
    const t = ids.shape[1] as number;
    const base = { eosTokenId: this.lm.tokens.eos, padTokenId: this.lm.tokens.pad, ...options };
    const settings: GenerateOptions =
      this.lm.kind === 'decoder-only'
        ? {
            ...base,
            ...blip2DecoderOnlyLengths({
              queryLength: softPrompt.shape[1] as number,
              promptLength: t,
              maxNewTokens: options.maxNewTokens,
              maxLength: options.maxLength,
              minLength: options.minLength,
              minNewTokens: options.minNewTokens,
            }),
          }
        : base;
    let res: GenerateResult;
    try {
      res = await generate(session, settings);
    } finally {
      session.dispose();
    }
    const n = options.numReturnSequences ?? 1;
    const start = this.lm.tokens.decoderStart ?? 0;
    const prefix =
      this.lm.kind === 'decoder-only' ? ids : ({ dtype: 'I32', shape: [rows, 1], data: new Int32Array(rows).fill(start) } as const);
    return { ...res, fullSequences: withPrompt(prefix, res.sequences, n), softPrompt };
  }

  /** Releases every ORT session. */
  dispose(): Promise<void> {
    return this.backend.dispose();
  }
}

/** The graph function passed to `OnnxFileBackend.run` (ignored: the file is the graph). */
const noGraph: GraphFn<unknown> = () => {
  throw new OnnxBackendError('ONNX_TRACE', 'exported graphs are not traced');
};

function ones(like: HostTensor): HostTensor<'I32'> {
  const n = like.shape.reduce((a, b) => a * b, 1);
  return { dtype: 'I32', shape: [...like.shape], data: new Int32Array(n).fill(1) };
}
