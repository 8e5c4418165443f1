import type { QFormerConfig } from '@qf/io';

/** The sizes one Q-Former layer needs, derived once from the config. */
export interface LayerShape {
  readonly hidden: number;
  readonly numHeads: number;
  readonly headDim: number;
  readonly eps: number;
}

/** Derives {@link LayerShape} from a validated Q-Former config. */
export function layerShape(cfg: QFormerConfig): LayerShape {
  return {
    hidden: cfg.hiddenSize,
    numHeads: cfg.numAttentionHeads,
    headDim: cfg.hiddenSize / cfg.numAttentionHeads,
    eps: cfg.layerNormEps,
  };
}

/** Layer `i` has cross-attention iff `i % cross_attention_frequency == 0`. */
export function hasCrossAttention(cfg: QFormerConfig, layerIndex: number): boolean {
  return layerIndex % cfg.crossAttentionFrequency === 0;
}
