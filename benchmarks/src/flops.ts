import type { QFormerConfig } from '@qf/io';

/** The sizes of one image's query-path forward pass. */
export interface QueryPathShape {
  /** Q, the learned query tokens. */
  readonly numQueryTokens: number;
  /** N, image feature tokens per image (257 for ViT-g/14 at 224 px: 16x16 patches + CLS). */
  readonly numImageTokens: number;
}

/** FLOPs of one image's query-path forward pass, by part. */
export interface QueryPathFlops {
  /** Self-attention of all layers: Q/K/V/output projections, QK^T and attention x V. */
  readonly selfAttention: number;
  /** Cross-attention of the layers that have it: Q/output projections on queries, K/V on image tokens, scores, context. */
  readonly crossAttention: number;
  /** The query FFN (`intermediate_query` + `output_query`) of all layers. */
  readonly feedForward: number;
  /** Sum of the above. */
  readonly total: number;
  /** Layers with cross-attention. */
  readonly crossAttentionLayers: number;
}

/** FLOPs of `x[m,k] @ w[k,n]`: one multiply and one add per multiply-accumulate. */
export function matmulFlops(m: number, k: number, n: number): number {
  return 2 * m * k * n;
}

/** Layer `i` has cross-attention iff `i % cross_attention_frequency == 0` (DESIGN.md §3). */
export function crossAttentionLayerCount(c: QFormerConfig): number {
  let n = 0;
  for (let i = 0; i < c.numHiddenLayers; i++) if (i % c.crossAttentionFrequency === 0) n++;
  return n;
}

/**
 * FLOPs per image of the Q-Former forward on image features only (no text): the `query_output` path.
 *
 * Counts matrix products only, at 2 FLOPs per multiply-accumulate; bias adds, LayerNorm, softmax,
 * GELU, residual adds and the mask add are left out (well under 1% of the total at BLIP-2 sizes).
 * With H = hidden, I = intermediate, E = encoder_hidden_size, Q queries and N image tokens:
 * - self-attention, every layer: 4 projections `2*Q*H*H` each, scores and context `2*Q*Q*H` each;
 * - cross-attention, layers `i % freq == 0`: Q and output projections `2*Q*H*H` each, K and V
 *   projections of the image tokens `2*N*E*H` each, scores and context `2*Q*N*H` each;
 * - query FFN, every layer: `2*Q*H*I` twice.
 * The head count does not change the count (heads split H). BLIP-2 defaults (12 layers, H 768,
 * I 3072, E 1408, freq 2, Q 32, N 257) give 12.75 GFLOP per image.
 */
export function queryPathFlops(c: QFormerConfig, shape: QueryPathShape): QueryPathFlops {
  const h = c.hiddenSize;
  const q = shape.numQueryTokens;
  const n = shape.numImageTokens;
  const e = c.encoderHiddenSize;
  const layers = c.numHiddenLayers;
  const crossLayers = crossAttentionLayerCount(c);

  const selfPerLayer = 4 * matmulFlops(q, h, h) + 2 * matmulFlops(q, h, q);
  const crossPerLayer =
    2 * matmulFlops(q, h, h) + // query and output projections
    2 * matmulFlops(n, e, h) + // key and value projections of the image features
    2 * matmulFlops(q, h, n); // scores QK^T and context PV
  const ffnPerLayer = matmulFlops(q, h, c.intermediateSize) + matmulFlops(q, c.intermediateSize, h);

  const selfAttention = layers * selfPerLayer;
  const crossAttention = crossLayers * crossPerLayer;
  const feedForward = layers * ffnPerLayer;
  return {
    selfAttention,
    crossAttention,
    feedForward,
    total: selfAttention + crossAttention + feedForward,
    crossAttentionLayers: crossLayers,
  };
}
