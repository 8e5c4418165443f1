import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { QFormerModel } from '@qf/core';
import { loadQFormerFromDir } from '@qf/core/node';
import { createOnnxBackend } from '@qf/backends/onnx';
import { createTfjsBackend } from '@qf/backends/tfjs';
import type { HostTensor } from '@qf/io';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { drawOnnxCase } from './onnx-cases.js';
import { expectClose, hfRandomDir, maxAbsDiff, readAll, requireDir } from './helpers.js';

const backend = createOnnxBackend({ ort, intraOpNumThreads: 1 });
afterAll(() => backend.dispose());

describe('onnx vs HF on the hf-random configs', () => {
  const cases = readdirSync(requireDir(hfRandomDir)).filter((d) => d.startsWith('random_'));
  it('has the generated cases', () => expect(cases.length).toBeGreaterThanOrEqual(8));
  for (const name of cases) {
    it(`${name}: query, text, multimodal and retrieval outputs match HF`, async () => {
      const dir = join(hfRandomDir, name);
      const inputs = await readAll(join(dir, 'inputs.safetensors'));
      const expected = await readAll(join(dir, 'outputs.safetensors'));
      const model = await loadQFormerFromDir(backend, dir);
      try {
        const text = {
          input_ids: inputs['input_ids']!,
          attention_mask: inputs['attention_mask']!,
        } satisfies Record<string, HostTensor>;
        const masked = await model.run({
          image_embeds: inputs['image_embeds']!,
          image_attention_mask: inputs['image_attention_mask']!,
          ...text,
        });
        expectClose(`${name} query_output`, masked['query_output'], expected['query_output']);
        expectClose(`${name} text_output`, masked['text_output'], expected['text_output']);
        if (expected['multimodal_output'])
          expectClose(
            `${name} multimodal_output`,
            masked['multimodal_output'],
            expected['multimodal_output'],
          );
        const unmasked = await model.run({ image_embeds: inputs['image_embeds']!, ...text });
        expectClose(
          `${name} query_output_unmasked`,
          unmasked['query_output'],
          expected['query_output_unmasked'],
        );
        expectClose(
          `${name} multimodal_output_unmasked_image`,
          unmasked['multimodal_output'],
          expected['multimodal_output_unmasked_image'],
        );
        const retrieval = await model.run({ image_embeds: inputs['vision_image_embeds']!, ...text });
        for (const k of ['itm_logits', 'itc_logits', 'image_feats', 'text_feat'])
          expectClose(`${name} ${k}`, retrieval[k], expected[k]);
      } finally {
        model.dispose();
      }
    });
  }
  it('released the sessions of every disposed model', () => expect(backend.sessionCount).toBe(0));
});

describe('tfjs-cpu vs onnx on random configs (stress init)', () => {
  for (const seed of [21, 22, 23, 24, 25, 26, 27, 28]) {
    it(`seed ${seed}: every output and hidden state agrees`, async () => {
      const { spec, tensors, inputs } = drawOnnxCase(seed);
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
    const { spec, tensors, inputs } = drawOnnxCase(31);
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
