import {
  QFormerModel,
  type QFormerModelSpec,
  initParams,
  qformerModelConfigFromJson,
  qformerParamSpecs,
} from '@qf/core';
import { OnnxBackendError, createOnnxBackend } from '@qf/backends/onnx';
import { createTfjsBackend } from '@qf/backends/tfjs';
import { type HostTensor, TensorError } from '@qf/io';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { drawRandomCase } from './random-case.js';

describe('onnx backend lifecycle', () => {
  it('run after dispose throws OnnxBackendError ONNX_DISPOSED; disposing params releases their sessions', async () => {
    const { spec, tensors, inputs } = drawRandomCase(51);
    const backend = createOnnxBackend({ ort, intraOpNumThreads: 1 });
    const model = QFormerModel.fromTensors(backend, spec, tensors);
    await model.run(inputs);
    await model.run({ image_embeds: inputs['image_embeds']! });
    expect(backend.sessionCount).toBe(2);
    model.dispose();
    expect(backend.sessionCount).toBe(0);
    await expect(model.run(inputs)).rejects.toMatchObject({ code: 'ONNX_DISPOSED' });

    const again = QFormerModel.fromTensors(backend, spec, tensors);
    await again.run(inputs);
    await backend.dispose();
    expect(backend.sessionCount).toBe(0);
    const err = await again.run(inputs).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OnnxBackendError);
    expect(err).toMatchObject({ code: 'ONNX_DISPOSED' });
    expect(() => backend.createParams(tensors)).toThrow(OnnxBackendError);
  });

  it('ops record only inside run', () => {
    const backend = createOnnxBackend({ ort });
    expect(() => backend.ops.scalar(1)).toThrow(/inside backend.run/);
  });

  it('a loop creating and disposing sessions keeps RSS bounded', async () => {
    const { qformer } = qformerModelConfigFromJson({
      model_type: 'blip_2_qformer',
      hidden_size: 256,
      num_attention_heads: 4,
      num_hidden_layers: 2,
      intermediate_size: 512,
      cross_attention_frequency: 1,
      encoder_hidden_size: 1024,
      vocab_size: 100,
      max_position_embeddings: 16,
    });
    const spec: QFormerModelSpec = { qformer, numQueryTokens: 8, textPath: false };
    const tensors = initParams(qformerParamSpecs(spec), { seed: 1 });
    const weightBytes = [...tensors.values()].reduce((s, t) => s + t.data.byteLength, 0);
    const image: HostTensor = { dtype: 'F32', shape: [1, 16, 1024], data: new Float32Array(16 * 1024) };
    const cycle = async () => {
      const backend = createOnnxBackend({ ort, intraOpNumThreads: 1 });
      const model = QFormerModel.fromTensors(backend, spec, tensors);
      await model.run({ image_embeds: image });
      model.dispose();
      await backend.dispose();
    };
    for (let i = 0; i < 5; i++) await cycle();
    const before = process.memoryUsage().rss;
    const n = 30;
    for (let i = 0; i < n; i++) await cycle();
    const grown = process.memoryUsage().rss - before;
    // A leaked session would hold at least its weights (x2 once prepacked): n * weightBytes or more.
    expect(grown).toBeLessThan((n * weightBytes) / 2);
  });
});

describe('bad inputs give the same typed errors as tfjs', () => {
  const cases: [string, (i: Record<string, HostTensor>) => Record<string, HostTensor>][] = [
    ['unknown input', (i) => ({ ...i, pixel_values: i['image_embeds']! })],
    [
      'wrong image width',
      () => ({ image_embeds: { dtype: 'F32', shape: [1, 2, 3], data: new Float32Array(6) } }),
    ],
    [
      'int image',
      (i) => ({
        image_embeds: {
          ...i['image_embeds']!,
          dtype: 'I32',
          data: new Int32Array(i['image_embeds']!.data.length),
        },
      }),
    ],
    ['id out of range', () => ({ input_ids: { dtype: 'I32', shape: [1, 1], data: Int32Array.of(999) } })],
    [
      'non-binary mask',
      () => ({
        input_ids: { dtype: 'I32', shape: [1, 1], data: Int32Array.of(1) },
        attention_mask: { dtype: 'I32', shape: [1, 1], data: Int32Array.of(2) },
      }),
    ],
    ['nothing', () => ({})],
  ];
  for (const [label, make] of cases) {
    it(label, async () => {
      const { spec, tensors, inputs } = drawRandomCase(52);
      const bad = make(inputs);
      const errors: unknown[] = [];
      for (const backend of [createOnnxBackend({ ort }), await createTfjsBackend('cpu')]) {
        const model = QFormerModel.fromTensors<unknown>(backend as never, spec, tensors);
        errors.push(await model.run(bad).catch((e: unknown) => e));
        model.dispose();
      }
      const [onnxErr, tfErr] = errors as [TensorError, TensorError];
      expect(onnxErr).toBeInstanceOf(TensorError);
      expect(onnxErr.code).toBe(tfErr.code);
      expect(onnxErr.message).toBe(tfErr.message);
    });
  }
});
