import type { QFormerModelSpec } from '@qf/core';
import { QFORMER_DEFAULTS, type QFormerConfig } from '@qf/io';
import { queryPathFlops } from './flops.js';

/** A named benchmark case: a Q-Former with random weights fed random image features. */
export interface Workload {
  readonly name: string;
  readonly description: string;
  readonly spec: QFormerModelSpec;
  /** N, image feature tokens per image. */
  readonly numImageTokens: number;
  /** Batch sizes measured by default. */
  readonly batches: readonly number[];
}

function workload(
  name: string,
  description: string,
  qformer: Partial<QFormerConfig>,
  numQueryTokens: number,
  numImageTokens: number,
  batches: readonly number[],
): Workload {
  return {
    name,
    description,
    spec: { qformer: { ...QFORMER_DEFAULTS, ...qformer }, numQueryTokens, textPath: false },
    numImageTokens,
    batches,
  };
}

/** Every named workload. */
export const WORKLOADS: Readonly<Record<string, Workload>> = {
  'blip2-default': workload(
    'blip2-default',
    'BLIP-2 Q-Former (HF defaults: 12 layers, hidden 768, 12 heads, FFN 3072, cross-attention every 2nd layer), 32 queries, ViT-g features [B, 257, 1408]',
    {},
    32,
    257,
    [1, 8],
  ),
  small: workload(
    'small',
    'small Q-Former (4 layers, hidden 256, 4 heads, FFN 1024, cross-attention every 2nd layer), 32 queries, features [B, 65, 384]',
    {
      numHiddenLayers: 4,
      hiddenSize: 256,
      numAttentionHeads: 4,
      intermediateSize: 1024,
      encoderHiddenSize: 384,
    },
    32,
    65,
    [1, 8],
  ),
  tiny: workload(
    'tiny',
    'tiny Q-Former for tests (2 layers, hidden 32, 2 heads, FFN 64), 4 queries, features [B, 5, 48]',
    { numHiddenLayers: 2, hiddenSize: 32, numAttentionHeads: 2, intermediateSize: 64, encoderHiddenSize: 48 },
    4,
    5,
    [1, 2],
  ),
};

/** Looks up a workload by name. @throws Error listing the known names. */
export function getWorkload(name: string): Workload {
  const w = WORKLOADS[name];
  if (!w) throw new Error(`unknown workload "${name}" (known: ${Object.keys(WORKLOADS).join(', ')})`);
  return w;
}

/** GFLOP per image of a workload's forward pass (see {@link queryPathFlops}). */
export function gflopPerImage(w: Workload): number {
  return (
    queryPathFlops(w.spec.qformer, {
      numQueryTokens: w.spec.numQueryTokens,
      numImageTokens: w.numImageTokens,
    }).total / 1e9
  );
}
