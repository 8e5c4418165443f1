import { QFormerModel } from '@qf/core';
import { createOnnxBackend } from '@qf/backends/onnx';
import { createTfjsBackend } from '@qf/backends/tfjs';
import type { HostTensor } from '@qf/io';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { drawRandomCase } from './random-case.js';
import { expectClose, maxAbsDiff } from './helpers.js';

const backend = createOnnxBackend({ ort, intraOpNumThreads: 1 });
afterAll(() => backend.dispose());

describe('tfjs-cpu vs onnx on random configs (stress init)', () => {
  for (const seed of [21, 22, 23, 24, 25, 26, 27, 28]) {
    it(`seed ${seed}: every output and hidden state agrees`, async () => {
      const { spec, tensors, inputs } = drawRandomCase(seed);
      const tfModel = QFormerModel.fromTensors(await createTfjsBackend('cpu'), spec, tensors);
      const onnxModel = QFormerModel.fromTensors(backend, spec, tensors);
      try {
        const want = await tfModel.run(inputs, { hiddenStates: true });
        const got = await onnxModel.run(inputs, { hiddenStates: true });
        expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
        for (const k of Object.keys(want)) expectClose(k, got[k], want[k]);
        // every input subset takes its own graph
        const { image_embeds, input_ids, attention_mask } = inputs as Record<string, HostTensor>;
        const q = await onnxModel.run({ image_embeds: image_embeds! });
        const qt = await tfModel.run({ image_embeds: image_embeds! });
        expectClose('query_output (no mask)', q['query_output'], qt['query_output']);
        const t = await onnxModel.run({ input_ids: input_ids!, attention_mask: attention_mask! });
        expectClose('text_feat', t['text_feat'], want['text_feat']);
      } finally {
        tfModel.dispose();
        onnxModel.dispose();
      }
    });
  }
});

describe('weight formats', () => {
  it('int8 and float16 weights stay close to float32 (deviation bounded, not exact)', async () => {
    const { spec, tensors, inputs } = drawRandomCase(31);
    const runWith = async (weights: 'float32' | 'float16' | 'int8') => {
      const b = createOnnxBackend({ ort, intraOpNumThreads: 1, weights });
      const m = QFormerModel.fromTensors(b, spec, tensors);
      try {
        return await m.run(inputs);
      } finally {
        m.dispose();
        await b.dispose();
      }
    };
    const f32 = await runWith('float32');
    const int8 = await runWith('int8');
    for (const k of ['query_output', 'text_output', 'multimodal_output']) {
      const d = maxAbsDiff(int8[k]!, f32[k]!);
      expect(d, k).toBeGreaterThan(0);
      expect(d, k).toBeLessThan(0.5);
    }
  });
});
