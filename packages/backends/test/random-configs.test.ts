import {
  type QFormerModelSpec,
  QFormerModel,
  Rng,
  initParams,
  qformerModelConfigFromJson,
  qformerParamSpecs,
} from '@qf/core';
import { createTfjsBackend } from '@qf/backends/tfjs';
import type { HostTensor } from '@qf/io';
import { describe, expect, it } from 'vitest';
import { expectClose, lengthsMask } from './helpers.js';

/** Draws a small random Q-Former model and a batch of inputs with padded text and images. */
function drawCase(seed: number) {
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
  const image: HostTensor = {
    dtype: 'F32',
    shape: [b, n, enc],
    data: Float32Array.from({ length: b * n * enc }, () => rng.normal()),
  };
  const ids: HostTensor = {
    dtype: 'I32',
    shape: [b, t],
    data: Int32Array.from({ length: b * t }, () => rng.int(1, 29)),
  };
  const inputs: Record<string, HostTensor> = {
    image_embeds: image,
    image_attention_mask: lengthsMask([n, ...Array.from({ length: b - 1 }, () => rng.int(1, n))], n),
    input_ids: ids,
    attention_mask: lengthsMask([t, ...Array.from({ length: b - 1 }, () => rng.int(1, t))], t),
  };
  return { spec, tensors: initParams(qformerParamSpecs(spec), { seed, scheme: 'stress' }), inputs };
}

describe('tfjs-cpu vs tfjs-wasm on random configs', () => {
  for (const seed of [11, 12, 13, 14, 15, 16]) {
    it(`seed ${seed}: every output agrees`, async () => {
      const { spec, tensors, inputs } = drawCase(seed);
      const results: Record<string, HostTensor>[] = [];
      for (const name of ['cpu', 'wasm'] as const) {
        const model = QFormerModel.fromTensors(await createTfjsBackend(name), spec, tensors);
        results.push(await model.run(inputs, { hiddenStates: true }));
        model.dispose();
      }
      const [cpu, wasm] = results as [Record<string, HostTensor>, Record<string, HostTensor>];
      expect(Object.keys(wasm).sort()).toEqual(Object.keys(cpu).sort());
      expect(Object.keys(cpu)).toContain('itc_logits');
      for (const k of Object.keys(cpu)) expectClose(k, wasm[k], cpu[k]);
    });
  }
});
