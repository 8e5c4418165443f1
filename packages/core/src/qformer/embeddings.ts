import { QfError } from '@qf/io';
import type { Ops } from '../ops.js';
import type { ParamStore } from '../params.js';

/**
 * Text embeddings of the Q-Former: `word_emb(ids) + pos_emb(0..T-1)` (positions start at 0 even when
 * queries precede the text). No LayerNorm here: the Q-Former applies `qformer.layernorm` to the whole
 * [queries ; text] sequence.
 * @param inputIds int32 [B, T]
 * @returns [B, T, H]
 */
export function textEmbeddings<T>(ops: Ops<T>, params: ParamStore<T>, inputIds: T): T {
  const words = ops.gather(params.get('embeddings.word_embeddings.weight'), inputIds); // [B, T, H]
  const positions = ops.range(inputIds, 1); // [T]
  const pos = ops.gather(params.get('embeddings.position_embeddings.weight'), positions); // [T, H]
  return ops.add(words, pos);
}

/**
 * The learned query tokens, repeated over the batch of `like`.
 * @returns [B, Q, H]
 */
export function queryTokens<T>(ops: Ops<T>, params: ParamStore<T>, like: T): T {
  return ops.expandBatch(params.get('query_tokens'), like); // [1, Q, H] -> [B, Q, H]
}

/**
 * The sequence the encoder reads: `[queries ; text]` (either part optional), before LayerNorm.
 * @returns [B, Q + T, H]
 */
export function concatInputs<T>(ops: Ops<T>, queries: T | undefined, text: T | undefined): T {
  if (queries && text) return ops.concat([queries, text], 1);
  const x = queries ?? text;
  if (!x) throw new QfError('MODEL_USAGE', 'concatInputs: need query embeddings, text embeddings, or both');
  return x;
}
