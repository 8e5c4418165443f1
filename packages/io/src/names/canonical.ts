/**
 * Canonical parameter names: HF transformers 4.47 `Blip2ForImageTextRetrieval` /
 * `Blip2ForConditionalGeneration` names, plus the LAVIS-only `temp` and `Qformer.cls.*` under their
 * LAVIS names. Model code keys its parameter store by these.
 */

const LAYER = 'qformer\\.encoder\\.layer\\.\\d+';
const PARAM = '(weight|bias)';

const CANONICAL_PATTERNS: readonly RegExp[] = [
  /^query_tokens$/,
  /^embeddings\.(word_embeddings|position_embeddings)\.weight$/,
  new RegExp(`^qformer\\.layernorm\\.${PARAM}$`),
  new RegExp(
    `^${LAYER}\\.(attention|crossattention)\\.(attention\\.(query|key|value)|output\\.(dense|LayerNorm))\\.${PARAM}$`,
  ),
  new RegExp(`^${LAYER}\\.(intermediate|intermediate_query)\\.dense\\.${PARAM}$`),
  new RegExp(`^${LAYER}\\.(output|output_query)\\.(dense|LayerNorm)\\.${PARAM}$`),
  new RegExp(`^(vision_projection|text_projection|itm_head|language_projection)\\.${PARAM}$`),
  /^vision_model\.[^.].*$/,
  /^language_model\.[^.].*$/,
  /^temp$/,
  /^Qformer\.cls\.[^.].*$/,
];

/** True when `name` is a canonical parameter name (see the module doc). */
export function isCanonicalName(name: string): boolean {
  return CANONICAL_PATTERNS.some((p) => p.test(name));
}

/** Canonical names of the Q-Former's learned embeddings and final embedding LayerNorm. */
export const QFORMER_EMBEDDING_NAMES = Object.freeze({
  queryTokens: 'query_tokens',
  wordEmbeddings: 'embeddings.word_embeddings.weight',
  positionEmbeddings: 'embeddings.position_embeddings.weight',
  layerNormWeight: 'qformer.layernorm.weight',
  layerNormBias: 'qformer.layernorm.bias',
});

/** The canonical name prefix of Q-Former layer `i`, e.g. `qformer.encoder.layer.3`. */
export function qformerLayerPrefix(i: number): string {
  return `qformer.encoder.layer.${i}`;
}
