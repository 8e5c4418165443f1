import { type Checkpoint, type HostTensor, QfError, TensorError } from '@qf/io';
import type { Backend } from './backend.js';
import { type QFormerGraphOptions, graphKey, qformerGraph } from './graph.js';
import { validateQFormerInputs } from './inputs.js';
import { type LoadOptions, type QFormerModelConfig, loadQFormerTensors } from './load.js';
import type { ParamStore } from './params.js';
import type { QFormerModelSpec } from './spec.js';

/** Options of {@link QFormerModel.run}. */
export interface RunOptions {
  /** Also return every layer's hidden states as `{query,text,multimodal}_hidden_states.{i}`. */
  readonly hiddenStates?: boolean;
  /**
   * Run only the image-text (ITM) pass: outputs `multimodal_output` and, with the retrieval heads,
   * `itm_logits`; needs `image_embeds` and `input_ids`. `image_embeds` (and `image_attention_mask`)
   * may then have batch 1 against a text batch of T: that image is paired with every text and its
   * cross-attention keys/values are computed once (see {@link QFormerModel.rerank}).
   */
  readonly itmOnly?: boolean;
  /**
   * Also return the query pass's cross-attention probabilities as `cross_attentions.{i}`
   * [B, heads, Q, N] for every layer i with cross-attention (softmax over the N image tokens, 0 on
   * masked ones; HF `cross_attentions` with `output_attentions=True`). Needs `image_embeds`.
   */
  readonly crossAttentions?: boolean;
}

/**
 * A BLIP-2 Q-Former (query tokens, optional text path, retrieval heads and language projection) held
 * by one backend. Every method takes and returns host tensors; all backend memory used by a call is
 * freed before it returns. Call {@link dispose} to free the parameters.
 *
 * @example
 * ```ts
 * const model = await QFormerModel.load(backend, checkpoint, config);
 * const { query_output } = await model.run({ image_embeds });
 * model.dispose();
 * ```
 */
export class QFormerModel<T> {
  private constructor(
    readonly backend: Backend<T>,
    readonly spec: QFormerModelSpec,
    private readonly params: ParamStore<T>,
    /** Checkpoint tensors that were not loaded. */
    readonly ignored: readonly string[],
  ) {}

  /** Builds a model from canonical-named float32 tensors (e.g. from `initParams`). */
  static fromTensors<T>(
    backend: Backend<T>,
    spec: QFormerModelSpec,
    tensors: ReadonlyMap<string, HostTensor>,
    ignored: readonly string[] = [],
  ): QFormerModel<T> {
    return new QFormerModel(backend, spec, backend.createParams(tensors), ignored);
  }

  /** Loads the Q-Former parts of a checkpoint (see `loadQFormerTensors`). */
  static async load<T>(
    backend: Backend<T>,
    checkpoint: Checkpoint,
    config: QFormerModelConfig,
    options?: LoadOptions,
  ): Promise<QFormerModel<T>> {
    const loaded = await loadQFormerTensors(checkpoint, config, options);
    return QFormerModel.fromTensors(backend, loaded.spec, loaded.tensors, loaded.ignored);
  }

  /**
   * Runs every output the inputs allow. Inputs by name: `image_embeds` [B,N,E], optional
   * `image_attention_mask` [B,N], optional `input_ids` and `attention_mask` [B,T] (I64 or I32).
   * Outputs: `query_output` [B,Q,H]; with text also `text_output` [B,T,H], `multimodal_output`
   * [B,Q+T,H]; where the model has the heads `itm_logits` [B,2], `itc_logits` [B,B], `image_feats`
   * [B,Q,D], `text_feat` [B,D]; `language_projection` [B,Q,L] where present.
   * @throws TensorError naming the input when a name, dtype, shape or value is wrong.
   */
  async run(
    inputs: Record<string, HostTensor>,
    options: RunOptions = {},
  ): Promise<Record<string, HostTensor>> {
    const itmOnly = options.itmOnly ?? false;
    const graph: QFormerGraphOptions = {
      ...validateQFormerInputs(this.spec, inputs, { itmOnly }),
      hiddenStates: options.hiddenStates ?? false,
      ...(itmOnly ? { itmOnly } : {}),
      ...(options.crossAttentions ? { crossAttentions: true } : {}),
    };
    return this.backend.run(graphKey(graph), qformerGraph(this.spec, this.params, graph), inputs);
  }

  /**
   * Feature extraction: the query outputs for a batch of image features, plus the ITC image features
   * and the soft prompt (language projection) where the model has them.
   */
  async extractFeatures(
    imageEmbeds: HostTensor,
    imageAttentionMask?: HostTensor,
  ): Promise<{ queryOutput: HostTensor; imageFeats?: HostTensor; languageProjection?: HostTensor }> {
    const out = await this.run(
      withOptional({ image_embeds: imageEmbeds }, 'image_attention_mask', imageAttentionMask),
    );
    return pick(
      { queryOutput: out['query_output'] },
      { imageFeats: out['image_feats'], languageProjection: out['language_projection'] },
    );
  }

  /** Text-only pass (ITC text side): `text_output` and, with retrieval heads, `text_feat`. */
  async encodeText(
    inputIds: HostTensor,
    attentionMask?: HostTensor,
  ): Promise<{ textOutput: HostTensor; textFeat?: HostTensor }> {
    const out = await this.run(withOptional({ input_ids: inputIds }, 'attention_mask', attentionMask));
    return pick({ textOutput: out['text_output'] }, { textFeat: out['text_feat'] });
  }

  /**
   * Scores image b against text b with the ITM head and every image against every text with ITC.
   * @returns `itm` [B, 2] logits (index 1 = match) and `itc` [B_image, B_text] similarities.
   */
  async score(
    imageEmbeds: HostTensor,
    inputIds: HostTensor,
    attentionMask?: HostTensor,
    imageAttentionMask?: HostTensor,
  ): Promise<{ itm: HostTensor; itc: HostTensor }> {
    const out = await this.run(this.pairInputs(imageEmbeds, inputIds, attentionMask, imageAttentionMask));
    return { itm: required(out, 'itm_logits'), itc: required(out, 'itc_logits') };
  }

  /**
   * ITM re-ranking: scores one image against T texts with the image-text pass only (no ITC, no
   * query-only or text-only pass). The image's cross-attention keys/values are computed once and
   * shared by every text, instead of once per text as when the image is repeated T times. An image
   * batch of T pairs image t with text t (the same pass, nothing shared).
   * @param imageEmbeds [1, N, E] (or [T, N, E])
   * @param inputIds [T, L]
   * @param attentionMask [T, L]
   * @param imageAttentionMask [1, N] (or [T, N])
   * @returns `itm` [T, 2] logits (index 1 = match) and `multimodalOutput` [T, Q + L, H]
   * @throws TensorError naming the input when a name, dtype, shape or value is wrong.
   */
  async rerank(
    imageEmbeds: HostTensor,
    inputIds: HostTensor,
    attentionMask?: HostTensor,
    imageAttentionMask?: HostTensor,
  ): Promise<{ itm: HostTensor; multimodalOutput: HostTensor }> {
    const inputs = this.pairInputs(imageEmbeds, inputIds, attentionMask, imageAttentionMask);
    const out = await this.run(inputs, { itmOnly: true });
    return { itm: required(out, 'itm_logits'), multimodalOutput: required(out, 'multimodal_output') };
  }

  /** Named inputs of an image-text pass; the retrieval heads must exist. */
  private pairInputs(
    imageEmbeds: HostTensor,
    inputIds: HostTensor,
    attentionMask: HostTensor | undefined,
    imageAttentionMask: HostTensor | undefined,
  ): Record<string, HostTensor> {
    if (!this.spec.retrievalHeads) {
      throw new QfError(
        'MODEL_NO_RETRIEVAL_HEADS',
        'this checkpoint has no retrieval heads (itm_head, vision/text projections)',
      );
    }
    // both sides are required here (run() alone would take either as a one-sided pass)
    if (!imageEmbeds) throw new TensorError('TENSOR_MISSING', 'image_embeds', 'scoring needs image_embeds');
    if (!inputIds) throw new TensorError('TENSOR_MISSING', 'input_ids', 'scoring needs input_ids');
    const withText = withOptional(
      { image_embeds: imageEmbeds, input_ids: inputIds },
      'attention_mask',
      attentionMask,
    );
    return withOptional(withText, 'image_attention_mask', imageAttentionMask);
  }

  /** Frees the parameters held by the backend. */
  dispose(): void {
    this.backend.disposeParams(this.params);
  }
}

function withOptional(
  base: Record<string, HostTensor>,
  name: string,
  t: HostTensor | undefined,
): Record<string, HostTensor> {
  return t ? { ...base, [name]: t } : base;
}

function required(out: Record<string, HostTensor>, name: string): HostTensor {
  const t = out[name];
  if (!t) throw new Error(`internal: output ${name} was not produced`);
  return t;
}

function pick<
  R extends Record<string, HostTensor | undefined>,
  O extends Record<string, HostTensor | undefined>,
>(req: R, opt: O): { [K in keyof R]: HostTensor } & { [K in keyof O]?: HostTensor } {
  for (const [k, v] of Object.entries(req)) if (!v) throw new Error(`internal: output ${k} was not produced`);
  const res: Record<string, HostTensor> = { ...(req as Record<string, HostTensor>) };
  for (const [k, v] of Object.entries(opt)) if (v) res[k] = v;
  return res as { [K in keyof R]: HostTensor } & { [K in keyof O]?: HostTensor };
}
