import { Rng } from '@qf/core';
import type { HostTensor } from '@qf/io';

/** One synthetic batch: image features (as a vision tower would emit them) and captions. */
export interface DemoBatch {
  /** [B, N, E] F32. */
  readonly imageEmbeds: HostTensor<'F32'>;
  /** [B, T] I64, starting with the [CLS] id, 0-padded. */
  readonly inputIds: HostTensor<'I64'>;
  /** [B, T] I64, 1 on real tokens. */
  readonly attentionMask: HostTensor<'I64'>;
}

/** Sizes of the synthetic data. */
export interface DemoDataShape {
  readonly batch: number;
  /** Image tokens per image (N). */
  readonly imageTokens: number;
  /** Image feature width (E, the vision hidden size). */
  readonly imageWidth: number;
  /** Caption length (T, with padding). */
  readonly textLength: number;
  readonly vocabSize: number;
}

/** BERT's [CLS] id, which the Q-Former's ITC text side reads. */
const CLS_ID = 101;
/** How many distinct "concepts" the synthetic pairs are drawn from. */
const CONCEPTS = 4;

/**
 * Deterministic synthetic pairs: sample i belongs to concept `i % 4`; its image features are that
 * concept's prototype plus noise, and its caption draws tokens from that concept's slice of the
 * vocabulary. Nothing here comes from real images or text.
 */
export function makeDemoBatch(seed: number, index: number, s: DemoDataShape): DemoBatch {
  const proto = new Rng(seed ^ 0x5eed);
  const prototypes = Array.from({ length: CONCEPTS }, () =>
    Float32Array.from({ length: s.imageTokens * s.imageWidth }, () => proto.normal()),
  );
  const rng = new Rng((seed * 1_000_003 + index * 7919 + 17) >>> 0);
  const image = new Float32Array(s.batch * s.imageTokens * s.imageWidth);
  const ids = new BigInt64Array(s.batch * s.textLength);
  const mask = new BigInt64Array(s.batch * s.textLength);
  const slice = Math.floor((s.vocabSize - CLS_ID - 1) / CONCEPTS);
  for (let b = 0; b < s.batch; b++) {
    const concept = (index * s.batch + b) % CONCEPTS;
    const p = prototypes[concept]!;
    const base = b * p.length;
    for (let k = 0; k < p.length; k++) image[base + k] = p[k]! + 0.5 * rng.normal();
    const length = rng.int(Math.min(4, s.textLength), s.textLength);
    for (let t = 0; t < length; t++) {
      ids[b * s.textLength + t] = BigInt(
        t === 0 ? CLS_ID : CLS_ID + 1 + concept * slice + rng.int(0, slice - 1),
      );
      mask[b * s.textLength + t] = 1n;
    }
  }
  return {
    imageEmbeds: { dtype: 'F32', shape: [s.batch, s.imageTokens, s.imageWidth], data: image },
    inputIds: { dtype: 'I64', shape: [s.batch, s.textLength], data: ids },
    attentionMask: { dtype: 'I64', shape: [s.batch, s.textLength], data: mask },
  };
}
