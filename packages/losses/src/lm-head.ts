import type { Ops, ParamStore } from '@qf/core';

/**
 * Canonical names of the stage-1 parameters that the Q-Former model itself does not have: the ITC
 * temperature and LAVIS's BERT LM head (`Qformer.cls.predictions.*`, kept under the LAVIS names in
 * both layouts). The decoder weight is tied to `embeddings.word_embeddings.weight` and the decoder
 * bias to `Qformer.cls.predictions.bias`, so neither is a parameter of its own.
 */
export const STAGE1_NAMES = Object.freeze({
  temp: 'temp',
  transformDenseWeight: 'Qformer.cls.predictions.transform.dense.weight',
  transformDenseBias: 'Qformer.cls.predictions.transform.dense.bias',
  transformNormWeight: 'Qformer.cls.predictions.transform.LayerNorm.weight',
  transformNormBias: 'Qformer.cls.predictions.transform.LayerNorm.bias',
  bias: 'Qformer.cls.predictions.bias',
  /** Tied copy of the word embeddings (written for LAVIS, checked on load, never a parameter). */
  decoderWeight: 'Qformer.cls.predictions.decoder.weight',
  /** Tied copy of `bias` (written for LAVIS, checked on load, never a parameter). */
  decoderBias: 'Qformer.cls.predictions.decoder.bias',
  wordEmbeddings: 'embeddings.word_embeddings.weight',
});

/**
 * The Q-Former's BERT LM head (LAVIS `Qformer.cls`, HF `BertOnlyMLMHead`):
 * `LayerNorm(gelu(dense(h))) @ word_embeddings^T + bias` (exact erf GELU, the Q-Former's LayerNorm eps).
 * @param hidden [..., H] text rows of the ITG pass
 * @returns prediction scores [..., V]
 */
export function lmHeadLogits<T>(ops: Ops<T>, params: ParamStore<T>, hidden: T, eps: number): T {
  const n = STAGE1_NAMES;
  const h = ops.gelu(
    ops.linear(hidden, params.get(n.transformDenseWeight), params.get(n.transformDenseBias)),
  );
  const normed = ops.layerNorm(h, params.get(n.transformNormWeight), params.get(n.transformNormBias), eps);
  return ops.linear(normed, params.get(n.wordEmbeddings), params.get(n.bias));
}
