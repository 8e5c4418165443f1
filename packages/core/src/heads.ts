import type { Ops } from './ops.js';
import type { ParamStore } from './params.js';

/** `x / max(||x||_2, eps)` over the last axis (PyTorch `F.normalize`). */
export function l2Normalize<T>(ops: Ops<T>, x: T, eps = 1e-12): T {
  const norm = ops.sqrt(ops.sum(ops.mul(x, x), -1, true));
  return ops.div(x, ops.maximum(norm, ops.scalar(eps)));
}

/**
 * ITC image side: `normalize(vision_projection(query_output))`.
 * @param queryOutput [B, Q, H]
 * @returns [B, Q, D]
 */
export function imageFeatures<T>(ops: Ops<T>, params: ParamStore<T>, queryOutput: T): T {
  return l2Normalize(
    ops,
    ops.linear(queryOutput, params.get('vision_projection.weight'), params.get('vision_projection.bias')),
  );
}

/**
 * ITC text side: `normalize(text_projection(text_output[:, 0]))` (the [CLS] row).
 * @param textOutput [B, T, H]
 * @returns [B, D]
 */
export function textFeature<T>(ops: Ops<T>, params: ParamStore<T>, textOutput: T): T {
  const cls = ops.reshape(ops.slice(textOutput, 1, 0, 1), [0, -1]); // [B, H]
  return l2Normalize(
    ops,
    ops.linear(cls, params.get('text_projection.weight'), params.get('text_projection.bias')),
  );
}

/**
 * ITC similarity as in HF `Blip2ForImageTextRetrieval`: for each image i and text j, the maximum over
 * queries of `image_feats[i, q] . text_feat[j]` (no temperature).
 * @param imageFeats [Bi, Q, D]
 * @param textFeat [Bt, D]
 * @returns logits_per_image [Bi, Bt]
 */
export function itcSimilarity<T>(ops: Ops<T>, imageFeats: T, textFeat: T): T {
  const perQuery = ops.linear(imageFeats, textFeat); // [Bi, Q, Bt]
  return ops.max(perQuery, 1); // [Bi, Bt]
}

/**
 * ITM logits: `itm_head(multimodal_output[:, :Q]).mean over queries`.
 * @param multimodalOutput [B, Q + T, H]
 * @returns [B, 2] (index 1 = match)
 */
export function itmLogits<T>(
  ops: Ops<T>,
  params: ParamStore<T>,
  multimodalOutput: T,
  queryLength: number,
): T {
  const queries = ops.slice(multimodalOutput, 1, 0, queryLength); // [B, Q, H]
  const perQuery = ops.linear(queries, params.get('itm_head.weight'), params.get('itm_head.bias')); // [B, Q, 2]
  return ops.mean(perQuery, 1);
}

/**
 * The projector: `language_projection(query_output)`, the soft prompt for the language model.
 * @param queryOutput [B, Q, H]
 * @returns [B, Q, L]
 */
export function languageProjection<T>(ops: Ops<T>, params: ParamStore<T>, queryOutput: T): T {
  return ops.linear(
    queryOutput,
    params.get('language_projection.weight'),
    params.get('language_projection.bias'),
  );
}
