import {
  type QFormerModelSpec,
  Rng,
  initParams,
  qformerModelConfigFromJson,
  qformerParamSpecs,
} from '@qf/core';
import type { HostTensor } from '@qf/io';
import { lengthsMask } from './helpers.js';

/**
 * Draws a small random Q-Former model (stress init: every parameter non-trivial) and a batch with
 * padded text and images, for cross-backend parity. Ids are I32 or I64 by seed, so both are fed.
 */
export function drawRandomCase(seed: number) {
  const rng = new Rng(seed);
  const heads = [1, 2, 4][rng.int(0, 2)]!;
  const hidden = heads * [4, 8][rng.int(0, 1)]!;
  const enc = [6, 10][rng.int(0, 1)]!;
  const qformer = qformerModelConfigFromJson({
    model_type: 'blip_2_qformer',
    hidden_size: hidden,
    num_attention_heads: heads,
    num_hidden_layers: rng.int(1, 3),
    intermediate_size: hidden * 2,
    cross_attention_frequency: rng.int(1, 3),
    encoder_hidden_size: enc,
    vocab_size: 30,
    max_position_embeddings: 16,
  }).qformer;
  const spec: QFormerModelSpec = {
    qformer,
    numQueryTokens: rng.int(1, 5),
    textPath: true,
    retrievalHeads: { imageTextHiddenSize: 8 },
    languageProjection: { outFeatures: 5 },
  };
  const b = rng.int(1, 3);
  const n = rng.int(2, 7);
  const t = rng.int(1, 6);
  const idValues = Array.from({ length: b * t }, () => rng.int(1, 29));
  const ids: HostTensor =
    seed % 2 === 0
      ? { dtype: 'I32', shape: [b, t], data: Int32Array.from(idValues) }
      : { dtype: 'I64', shape: [b, t], data: BigInt64Array.from(idValues, (v) => BigInt(v)) };
  const inputs: Record<string, HostTensor> = {
    image_embeds: {
      dtype: 'F32',
      shape: [b, n, enc],
      data: Float32Array.from({ length: b * n * enc }, () => rng.normal()),
    },
    image_attention_mask: lengthsMask([n, ...Array.from({ length: b - 1 }, () => rng.int(1, n))], n),
    input_ids: ids,
    attention_mask: lengthsMask([t, ...Array.from({ length: b - 1 }, () => rng.int(1, t))], t),
  };
  return { spec, tensors: initParams(qformerParamSpecs(spec), { seed, scheme: 'stress' }), inputs };
}
