import type { Backend, GraphFn, ParamStore, QFormerModelSpec, RawImage } from '@qf/core';
import { type Blip2Config, type Checkpoint, ConfigError, type HostTensor, TensorError } from '@qf/io';
import { generate } from '../generate/index.js';
import { bosPrompt, withPrompt } from '../generate/prompt.js';
import { causalLmTargets, seq2seqTargets } from '../loss.js';
import { OptLanguageModel } from '../opt/lm.js';
import { optPositionIds } from '../opt/positions.js';
import { softPromptMask } from '../soft-prompt.js';
import { type Blip2Caption, type Blip2CaptionOptions, captionImages } from './caption.js';
import { type Blip2LanguageModel, blip2Config, blip2LanguageModel } from './config.js';
import { Blip2Error } from './errors.js';
import { type Blip2GenerateOptions, type Blip2GenerateResult, blip2GenerateOptions } from './generation.js';
import {
  BLIP2_INPUTS,
  type Blip2GraphOptions,
  blip2DecoderOnlyForwardGraph,
  blip2EncoderDecoderForwardGraph,
  blip2GraphKey,
  blip2ImageGraph,
  blip2QFormerProjectorGraph,
} from './graphs.js';
import { type Blip2Inputs, shiftRight, validateBlip2Inputs } from './inputs.js';
import { type Blip2LoadOptions, blip2QFormerSpec, checkBlip2Tensors, loadBlip2Tensors } from './load.js';

/** Options of {@link Blip2Model.forward}. */
export interface Blip2ForwardOptions {
  /** Also return `vision_hidden_states.{i}` and `qformer_hidden_states.{i}` (HF `output_hidden_states`). */
  readonly hiddenStates?: boolean | undefined;
}

/**
 * Outputs of {@link Blip2Model.forward} (HF names in brackets). Always: `vision_output` [B, N + 1, E]
 * (`vision_outputs.last_hidden_state`), `query_output` [B, Q, H], `language_projection` [B, Q, D]
 * (the soft prompt). InstructBLIP: `qformer_output` [B, Q + Tq, H]. With `input_ids`:
 * `inputs_embeds`, `lm_attention_mask` (what the LM reads); decoder-only: `logits` [B, Q + T, V]
 * over every position; encoder-decoder: `encoder_last_hidden_state` and, given `labels` or
 * `decoder_input_ids`, decoder `logits` [B, L, V] (+ `decoder_input_ids` when shifted from the
 * labels). With `labels`: `loss` (scalar). With `hiddenStates`: the per-layer states.
 */
export interface Blip2ForwardOutputs {
  readonly vision_output: HostTensor;
  readonly query_output: HostTensor;
  readonly language_projection: HostTensor;
  readonly [name: string]: HostTensor | undefined;
}

/**
 * A whole BLIP-2 (HF `Blip2ForConditionalGeneration`) or InstructBLIP
 * (`InstructBlipForConditionalGeneration`) model on one backend: vision tower, Q-Former, projector
 * and frozen LM (OPT or T5), composed from `@qf/core` and `@qf/bridge` pieces. Every method takes
 * and returns host tensors and frees all backend memory it used; {@link dispose} frees the weights.
 * @example
 * ```ts
 * const { model, tokenizer } = await loadBlip2FromDir(backend, './blip2-opt'); // @qf/bridge/node
 * const [text] = await model.caption([image], { tokenizer, maxNewTokens: 20 });
 * model.dispose();
 * ```
 */
export class Blip2Model<T> {
  private disposed = false;

  private constructor(
    readonly backend: Backend<T>,
    readonly config: Blip2Config,
    readonly lm: Blip2LanguageModel,
    /** The Q-Former as this model runs it (text path for InstructBLIP, projector). */
    readonly spec: QFormerModelSpec,
    /** Every parameter, canonical (HF BLIP-2) names: `vision_model.*`, Q-Former, `language_projection.*`, `language_model.*`. */
    readonly params: ParamStore<T>,
    /** Checkpoint (or given) tensors that no part reads. */
    readonly ignored: readonly string[],
  ) {}

  /**
   * Loads a whole model from a checkpoint (HF BLIP-2 or InstructBLIP names), reading only the tensors
   * it needs (see `loadBlip2Tensors`).
   * @param config the parsed config (`parseModelConfig`) or the raw `config.json` content
   * @throws ConfigError for a config that is not a whole `blip-2` / `instructblip` model with an OPT or
   *   T5-family LM; Blip2Error `BLIP2_NOT_A_FULL_MODEL`; TensorError naming a missing, mis-shaped or
   *   (with `strict`) unused tensor
   */
  static async load<T>(
    backend: Backend<T>,
    checkpoint: Checkpoint,
    config: Blip2Config | unknown,
    options: Blip2LoadOptions = {},
  ): Promise<Blip2Model<T>> {
    const cfg = blip2Config(config);
    const lm = blip2LanguageModel(cfg);
    const loaded = await loadBlip2Tensors(checkpoint, cfg, lm, options);
    return new Blip2Model(
      backend,
      cfg,
      lm,
      loaded.spec,
      backend.createParams(loaded.tensors),
      loaded.ignored,
    );
  }

  /**
   * A model from canonical-named tensors (e.g. `initParams` over the parts' specs, or a training
   * run's weights); tensors it does not read are listed in `ignored` (an error with `strict`).
   * @throws TensorError naming a missing or mis-shaped parameter
   */
  static fromTensors<T>(
    backend: Backend<T>,
    config: Blip2Config | unknown,
    tensors: ReadonlyMap<string, HostTensor>,
    options: Blip2LoadOptions = {},
  ): Blip2Model<T> {
    const cfg = blip2Config(config);
    const lm = blip2LanguageModel(cfg);
    const extra = checkBlip2Tensors(cfg, lm, tensors);
    if (options.strict && extra.length > 0)
      throw new TensorError(
        'TENSOR_UNEXPECTED',
        extra[0] as string,
        `${extra.length} tensor(s) are not used by the model`,
      );
    const used = new Map([...tensors].filter(([n]) => !extra.includes(n)));
    return new Blip2Model(backend, cfg, lm, blip2QFormerSpec(cfg, lm), backend.createParams(used), extra);
  }

  /** True for InstructBLIP (the Q-Former reads `qformer_input_ids`). */
  get instruct(): boolean {
    return this.config.modelType === 'instructblip';
  }

  /** Q, the number of soft-prompt positions. */
  get queryLength(): number {
    return this.config.numQueryTokens;
  }

  /** S, the side of `pixel_values` (`vision_config.image_size`). */
  get imageSize(): number {
    return this.config.vision.imageSize;
  }

  /** {@link blip2ImageGraph} over this model's weights. */
  imageGraph(options: Omit<Blip2GraphOptions, 'instruct'> = {}): GraphFn<T> {
    return blip2ImageGraph(this.config.vision, this.spec, this.params, {
      ...options,
      instruct: this.instruct,
    });
  }

  /** {@link blip2QFormerProjectorGraph} over this model's weights. */
  qformerProjectorGraph(options: Omit<Blip2GraphOptions, 'instruct'> = {}): GraphFn<T> {
    return blip2QFormerProjectorGraph(this.spec, this.params, { ...options, instruct: this.instruct });
  }

  /**
   * HF `forward`: the whole chain from `pixel_values` (see {@link Blip2ForwardOutputs}). Without
   * `input_ids` only the image side runs (HF needs them; here they are optional).
   * @throws TensorError naming a bad input (expected vs actual)
   */
  async forward(inputs: Blip2Inputs, options: Blip2ForwardOptions = {}): Promise<Blip2ForwardOutputs> {
    this.live();
    const { textLength } = validateBlip2Inputs(this.config, this.lm, inputs);
    const graph: Blip2GraphOptions = {
      instruct: this.instruct,
      qformerMask: inputs.qformer_attention_mask !== undefined,
      hiddenStates: options.hiddenStates ?? false,
    };
    const feed = this.imageFeed(inputs);
    const image = blip2ImageGraph(this.config.vision, this.spec, this.params, graph);
    const ids = inputs.input_ids;
    if (!ids) {
      const extra = inputs.labels ? 'labels' : inputs.decoder_input_ids ? 'decoder_input_ids' : undefined;
      if (extra) throw new TensorError('TENSOR_MISSING', 'input_ids', `${extra} need input_ids`);
      return (await this.backend.run(blip2GraphKey('image', graph), image, feed)) as Blip2ForwardOutputs;
    }
    feed[BLIP2_INPUTS.ids] = ids;
    if (inputs.attention_mask) feed[BLIP2_INPUTS.mask] = inputs.attention_mask;
    const v = this.lm.shape.vocabSize;
    const labels = inputs.labels;
    let derived: HostTensor | undefined;
    let fn: GraphFn<T>;
    if (this.lm instanceof OptLanguageModel) {
      const q = this.queryLength;
      const textMask = inputs.attention_mask ?? onesLike(ids);
      feed[BLIP2_INPUTS.positions] = optPositionIds(softPromptMask(q, textMask), 'forward');
      if (labels) this.addTargets(feed, causalLmTargets(labels, q + textLength, v));
      fn = blip2DecoderOnlyForwardGraph(this.lm, this.params, image);
    } else {
      let decoderIds = inputs.decoder_input_ids;
      if (!decoderIds && labels) {
        decoderIds = derived = shiftRight(labels, this.decoderStart(), this.lm.tokens.pad ?? 0);
      }
      if (decoderIds) feed[BLIP2_INPUTS.decoderIds] = decoderIds;
      if (labels) this.addTargets(feed, seq2seqTargets(labels, v));
      fn = blip2EncoderDecoderForwardGraph(this.lm, this.params, image);
    }
    const flags = ['attention_mask', 'decoder_input_ids', 'target_index'].map((n) => +(n in feed)).join('');
    const out = await this.backend.run(
      blip2GraphKey(`forward-${this.lm.modelType}`, graph, `:${flags}`),
      fn,
      feed,
    );
    return (derived ? { ...out, decoder_input_ids: derived } : out) as Blip2ForwardOutputs;
  }

  /**
   * The image side only (`vision_output`, `query_output`, `language_projection`, InstructBLIP's
   * `qformer_output`): what generation conditions on.
   */
  async encodeImage(
    inputs: Pick<Blip2Inputs, 'pixel_values' | 'qformer_input_ids' | 'qformer_attention_mask'>,
    options: Blip2ForwardOptions = {},
  ): Promise<Blip2ForwardOutputs> {
    return this.forward(
      {
        pixel_values: inputs.pixel_values,
        qformer_input_ids: inputs.qformer_input_ids,
        qformer_attention_mask: inputs.qformer_attention_mask,
      },
      options,
    );
  }

  /**
   * HF `generate` of BLIP-2 / InstructBLIP (transformers 4.47) on any backend: the soft prompt from
   * the image (and instruction), then greedy or beam search over the LM's KV-cached decoding session.
   * Without `input_ids` the LM prompt is `[[bos_token_id]] * B`, as HF. Decoder-only prompts of
   * different lengths should be left-padded (HF reads the next token from each row's last position).
   * @throws TensorError naming a bad input; Blip2Error `BLIP2_BAD_OPTION`
   */
  async generate(inputs: Blip2Inputs, options: Blip2GenerateOptions = {}): Promise<Blip2GenerateResult> {
    this.live();
    for (const name of ['labels', 'decoder_input_ids'] as const)
      if (inputs[name]) throw new TensorError('TENSOR_UNEXPECTED', name, 'generate takes no targets');
    const { batch } = validateBlip2Inputs(this.config, this.lm, inputs);
    const prompt = inputs.input_ids ?? bosPrompt(batch, this.bos());
    const genOptions = blip2GenerateOptions(this.config, this.lm, prompt.shape[1] as number, options);
    const image = await this.encodeImage(inputs);
    const session = this.lm.session(this.backend, this.params, {
      softPrompt: image.language_projection,
      inputIds: prompt,
      attentionMask: inputs.input_ids ? inputs.attention_mask : undefined,
    });
    let res: Awaited<ReturnType<typeof generate>>;
    try {
      res = await generate(session, genOptions);
    } finally {
      session.dispose();
    }
    const n = genOptions.numReturnSequences ?? 1;
    const head =
      this.lm.kind === 'decoder-only'
        ? prompt
        : ({
            dtype: 'I32',
            shape: [batch, 1],
            data: new Int32Array(batch).fill(this.decoderStart()),
          } as const);
    return {
      sequences: withPrompt(head, res.sequences, n),
      generated: res.sequences,
      promptLength: head.shape[1] as number,
      scores: res.scores,
      sequenceScores: res.sequenceScores,
    };
  }

  /**
   * Captions (or answers) for images: preprocesses them as `BlipImageProcessor` (resize to
   * `image_size`, CLIP mean/std), tokenizes the prompt (left-padded for a decoder-only LM; InstructBLIP
   * also through `qformerTokenizer`), generates, and decodes the new tokens (special tokens skipped).
   * @throws Blip2Error `BLIP2_TOKENIZER_MISSING` without `tokenizer`, `BLIP2_QFORMER_TOKENIZER_MISSING` /
   *   `BLIP2_INSTRUCTION_MISSING` for InstructBLIP without its tokenizer or an instruction
   */
  async caption(images: readonly RawImage[], options: Blip2CaptionOptions): Promise<string[]> {
    return (await this.captionDetailed(images, options)).map((c) => c.caption);
  }

  /** {@link caption} with the token ids of every caption. */
  captionDetailed(images: readonly RawImage[], options: Blip2CaptionOptions): Promise<Blip2Caption[]> {
    this.live();
    return captionImages(this, images, options);
  }

  /** Frees the weights held by the backend; the model cannot be used afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.backend.disposeParams(this.params);
  }

  private live(): void {
    if (this.disposed) throw new Blip2Error('BLIP2_DISPOSED', 'this BLIP-2 model was disposed');
  }

  private imageFeed(inputs: Blip2Inputs): Record<string, HostTensor> {
    const feed: Record<string, HostTensor> = { [BLIP2_INPUTS.pixelValues]: inputs.pixel_values };
    if (inputs.qformer_input_ids) feed[BLIP2_INPUTS.qformerIds] = inputs.qformer_input_ids;
    if (inputs.qformer_attention_mask) feed[BLIP2_INPUTS.qformerMask] = inputs.qformer_attention_mask;
    return feed;
  }

  private addTargets(feed: Record<string, HostTensor>, t: { index: HostTensor; weight: HostTensor }): void {
    feed[BLIP2_INPUTS.targetIndex] = t.index;
    feed[BLIP2_INPUTS.targetWeight] = t.weight;
  }

  private bos(): number {
    const bos = this.lm.tokens.bos;
    if (bos === undefined)
      throw new ConfigError('text_config.bos_token_id', 'needed to generate without input_ids, got nothing');
    return bos;
  }

  private decoderStart(): number {
    const start = this.lm.tokens.decoderStart;
    if (start === undefined)
      throw new ConfigError(
        'text_config.decoder_start_token_id',
        'needed by the encoder-decoder LM, got nothing',
      );
    return start;
  }
}

function onesLike(ids: HostTensor): HostTensor<'I32'> {
  return { dtype: 'I32', shape: [...ids.shape], data: new Int32Array(ids.data.length).fill(1) };
}
