import type { Ops } from './ops.js';
import type { ParamStore } from './params.js';
import type { QFormerModelSpec } from './spec.js';
import { imageFeatures, itcSimilarity, itmLogits, languageProjection, textFeature } from './heads.js';
import { CROSS_ATTENTION_FILL, SELF_ATTENTION_FILL, bidirectionalMask, paddingMask } from './masks.js';
import { queryTokens, textEmbeddings } from './qformer/embeddings.js';
import { type QFormerPassOutputs, qformerEncoder } from './qformer/encoder.js';
import type { ImageContext } from './qformer/layer.js';

/** Names of the graph inputs (the `qf run` input names). */
export type QFormerInputName = 'image_embeds' | 'image_attention_mask' | 'input_ids' | 'attention_mask';

/** Names of the graph outputs (the `qf run` output names). */
export type QFormerOutputName =
  | 'query_output'
  | 'text_output'
  | 'multimodal_output'
  | 'itm_logits'
  | 'itc_logits'
  | 'image_feats'
  | 'text_feat'
  | 'language_projection'
  | `${'query' | 'text' | 'multimodal'}_hidden_states.${number}`
  | `cross_attentions.${number}`;

/** Which inputs a graph reads and which optional outputs it adds. */
export interface QFormerGraphOptions {
  readonly image: boolean;
  readonly imageMask: boolean;
  readonly text: boolean;
  readonly textMask: boolean;
  /** Also output every layer's hidden states as `{query,text,multimodal}_hidden_states.{i}`. */
  readonly hiddenStates?: boolean;
  /**
   * Run only the image-text (ITM) pass: `multimodal_output` and `itm_logits`, no query-only or
   * text-only pass. Queries are expanded to the text batch, so an `image_embeds` batch of 1 is paired
   * with every text (see {@link qformerGraph}).
   */
  readonly itmOnly?: boolean;
  /**
   * Also output the query pass's cross-attention probabilities as `cross_attentions.{i}`
   * [B, heads, Q, N], one per layer i that cross-attends (HF `cross_attentions` with
   * `output_attentions=True`, named by layer index). Needs the image; ignored with `itmOnly`.
   */
  readonly crossAttentions?: boolean;
}

/** A stable key for caching traced graphs. */
export function graphKey(o: QFormerGraphOptions): string {
  return `qformer:${+o.image}${+o.imageMask}${+o.text}${+o.textMask}${+(o.hiddenStates ?? false)}${o.itmOnly ? ':itm' : ''}${o.crossAttentions ? ':xattn' : ''}`;
}

/**
 * Builds the function that computes every Q-Former output the inputs allow:
 * - image only: `query_output` (+ `image_feats`, `language_projection` where the model has them);
 * - text only: `text_output` (+ `text_feat`);
 * - both: all of the above plus `multimodal_output`, `itm_logits` (image b with text b) and
 *   `itc_logits` [B_image, B_text];
 * - `itmOnly`: just `multimodal_output` and `itm_logits`;
 * - `crossAttentions` (with the image): `cross_attentions.{i}` of the query pass.
 *
 * The ITM pass expands the query tokens to the text batch. An image batch of 1 is therefore paired
 * with every text: cross-attention computes that image's keys/values once ([1, N, H]) and the
 * attention matmuls broadcast them over the texts, instead of repeating the image T times.
 */
export function qformerGraph<T>(
  spec: QFormerModelSpec,
  params: ParamStore<T>,
  o: QFormerGraphOptions,
): (ops: Ops<T>, inputs: Record<string, T>) => Record<string, T> {
  const cfg = spec.qformer;
  const q = spec.numQueryTokens;
  return (ops, inputs) => {
    const out: Record<string, T> = {};
    const keep = (prefix: string, pass: QFormerPassOutputs<T>) => {
      if (!o.hiddenStates) return;
      for (const [i, h] of pass.hiddenStates.entries()) out[`${prefix}_hidden_states.${i}`] = h;
    };
    const imageEmbeds = inputs['image_embeds'];
    const ids = inputs['input_ids'];
    const itmOnly = o.itmOnly ?? false;
    let image: ImageContext<T> | undefined;
    if (o.image && imageEmbeds) {
      const keepImage = inputs['image_attention_mask'];
      image = {
        embeds: imageEmbeds,
        mask: o.imageMask && keepImage ? paddingMask(ops, keepImage, CROSS_ATTENTION_FILL) : undefined,
      };
    }
    if (image && imageEmbeds && !itmOnly) {
      const pass = qformerEncoder(ops, cfg, params, {
        queries: queryTokens(ops, params, imageEmbeds),
        queryLength: q,
        image,
        crossAttentions: o.crossAttentions ?? false,
      });
      keep('query', pass);
      for (const [i, p] of pass.crossAttentions ?? []) out[`cross_attentions.${i}`] = p;
      out['query_output'] = pass.lastHiddenState;
      if (spec.retrievalHeads) out['image_feats'] = imageFeatures(ops, params, pass.lastHiddenState);
      if (spec.languageProjection)
        out['language_projection'] = languageProjection(ops, params, pass.lastHiddenState);
    }
    if (o.text && ids) {
      const textKeep = o.textMask ? inputs['attention_mask'] : undefined;
      const text = textEmbeddings(ops, params, ids);
      if (!itmOnly) {
        const selfMask = textKeep ? paddingMask(ops, textKeep, SELF_ATTENTION_FILL) : undefined;
        const pass = qformerEncoder(ops, cfg, params, { text, selfMask });
        keep('text', pass);
        out['text_output'] = pass.lastHiddenState;
        if (spec.retrievalHeads) out['text_feat'] = textFeature(ops, params, pass.lastHiddenState);
      }

      if (image) {
        // ITM pass: queries and text see each other (bidirectional), text padding masked out.
        // One set of queries per text, so a single image (batch 1) is shared by every text.
        const mmMask = textKeep ? bidirectionalMask(ops, q, textKeep) : undefined;
        const mm = qformerEncoder(ops, cfg, params, {
          queries: queryTokens(ops, params, ids),
          queryLength: q,
          text,
          selfMask: mmMask,
          image,
        });
        keep('multimodal', mm);
        out['multimodal_output'] = mm.lastHiddenState;
        if (spec.retrievalHeads) {
          out['itm_logits'] = itmLogits(ops, params, mm.lastHiddenState, q);
          const imageFeats = out['image_feats'];
          const textFeat = out['text_feat'];
          if (imageFeats && textFeat) out['itc_logits'] = itcSimilarity(ops, imageFeats, textFeat);
        }
      }
    }
    return out;
  };
}
