import {
  type Blip2GenerateOptions,
  type Blip2GenerateResult,
  type Blip2Inputs,
  type Blip2LanguageModel,
  type GenerateResult,
  OptLanguageModel,
  blip2Config,
  blip2GenerateOptions,
  blip2LanguageModel,
  bosPrompt,
  generate,
  validateBlip2Inputs,
  withPrompt,
} from '@qf/bridge';
import { type Backend, type GraphFn, type Ops, type ParamStore, paramStore } from '@qf/core';
import { type Blip2Config, ConfigError, type HostTensor, TensorError } from '@qf/io';
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
      throw new OnnxBackendError(
        'ONNX_TRACE',
        'an OnnxFileBackend takes no parameters (the files hold them)',
      );
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
        throw new OnnxBackendError(
          'ONNX_RUNTIME',
          `graph "${key}" needs input "${name}", which was not given`,
        );
      feeds[name] = toOrtTensor(this.options.ort, name, t);
    }
    const extra = Object.keys(inputs).filter((n) => !session.inputNames.includes(n));
    if (extra.length > 0)
      throw new OnnxBackendError('ONNX_RUNTIME', `graph "${key}" has no input(s) ${extra.join(', ')}`);
    let results: InferenceSession.ReturnType;
    try {
      results = await session.run(feeds);
    } catch (e) {
      throw new OnnxBackendError(
        'ONNX_RUNTIME',
        `ONNX Runtime failed to run "${key}": ${(e as Error).message}`,
        {
          cause: e,
        },
      );
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
    await Promise.all(
      all.map((s) =>
        s.then(
          (x) => x.release(),
          () => undefined,
        ),
      ),
    );
  }

  private checkAlive(): void {
    if (this.disposed) throw new OnnxBackendError('ONNX_DISPOSED', 'the onnx file backend was disposed');
  }
}

/**
 * Captioning from the files of `writeBlip2Onnx`: vision -> Q-Former + projector -> LM generation
 * (greedy or beam search over the exported prefill/step or T5 encoder/decoder graphs). The same
 * host-side code as `Blip2Model` of `@qf/bridge` runs on top (input validation, HF length bookkeeping,
 * `OptDecodingSession` / `T5DecodingSession`, `generate`), with no weights in JS. It has the shape of
 * the bridge's `CaptionModel` (`instruct`, `imageSize`, `lm`, `generate`).
 * Open one with `openBlip2Onnx` (`@qf/backends/onnx/node`) or {@link Blip2OnnxRunner.create}.
 */
export class Blip2OnnxRunner {
  /** The parsed HF config the export carries. */
  readonly config: Blip2Config;
  readonly lm: Blip2LanguageModel;
  private readonly params: ParamStore<unknown>;

  constructor(
    readonly manifest: Blip2OnnxManifest,
    readonly backend: OnnxFileBackend,
  ) {
    if (manifest.format !== 'qformer-ts-blip2-onnx/1')
      throw new OnnxBackendError(
        'ONNX_RUNTIME',
        `not a BLIP-2 ONNX manifest (format ${String(manifest.format)})`,
      );
    this.config = blip2Config(manifest.hfConfig);
    this.lm = blip2LanguageModel(this.config);
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

  /** True for InstructBLIP (the Q-Former reads `qformer_input_ids`). */
  get instruct(): boolean {
    return this.config.modelType === 'instructblip';
  }

  /** S, the side of `pixel_values`. */
  get imageSize(): number {
    return this.config.vision.imageSize;
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

  /**
   * The image side (`vision` then `qformer_projector`): `vision_output`, `query_output`,
   * `language_projection` and, for InstructBLIP, `qformer_output`, as `Blip2Model.encodeImage`.
   */
  async encodeImage(
    inputs: Pick<Blip2Inputs, 'pixel_values' | 'qformer_input_ids' | 'qformer_attention_mask'>,
  ): Promise<Record<string, HostTensor>> {
    validateBlip2Inputs(this.config, this.lm, inputs);
    const visionOutput = await this.vision(inputs.pixel_values);
    const feed: Record<string, HostTensor> = { image_embeds: visionOutput };
    const ids = inputs.qformer_input_ids;
    if (this.instruct && ids) {
      feed['qformer_input_ids'] = ids;
      feed['qformer_attention_mask'] = inputs.qformer_attention_mask ?? ones(ids);
    }
    const out = await this.backend.run(this.key('qformer_projector'), noGraph, feed);
    return { vision_output: visionOutput, ...out };
  }

  /**
   * HF `generate` of BLIP-2 / InstructBLIP from the files, with `Blip2Model.generate`'s inputs,
   * options (defaults from the exported config) and result.
   */
  async generate(inputs: Blip2Inputs, options: Blip2GenerateOptions = {}): Promise<Blip2GenerateResult> {
    for (const name of ['labels', 'decoder_input_ids'] as const)
      if (inputs[name]) throw new TensorError('TENSOR_UNEXPECTED', name, 'generate takes no targets');
    const { batch } = validateBlip2Inputs(this.config, this.lm, inputs);
    const bos = this.lm.tokens.bos;
    if (!inputs.input_ids && bos === undefined)
      throw new ConfigError('text_config.bos_token_id', 'needed to generate without input_ids, got nothing');
    const prompt = inputs.input_ids ?? bosPrompt(batch, bos as number);
    const settings = blip2GenerateOptions(this.config, this.lm, prompt.shape[1] as number, options);
    const image = await this.encodeImage(inputs);
    const lmPrompt = {
      softPrompt: image['language_projection'],
      inputIds: prompt,
      attentionMask: inputs.input_ids ? inputs.attention_mask : undefined,
    };
    const session =
      this.lm instanceof OptLanguageModel
        ? this.lm.session(this.backend, this.params, lmPrompt)
        : this.lm.session(this.backend, this.params, lmPrompt);
    let res: GenerateResult;
    try {
      res = await generate(session, settings);
    } finally {
      session.dispose();
    }
    const start = this.lm.tokens.decoderStart ?? 0;
    const head =
      this.lm.kind === 'decoder-only'
        ? prompt
        : ({ dtype: 'I32', shape: [batch, 1], data: new Int32Array(batch).fill(start) } as const);
    return {
      sequences: withPrompt(head, res.sequences, settings.numReturnSequences ?? 1),
      generated: res.sequences,
      promptLength: head.shape[1] as number,
      scores: res.scores,
      sequenceScores: res.sequenceScores,
    };
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
