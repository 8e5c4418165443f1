import { QFormerModel, type QFormerModelSpec, initParams, qformerParamSpecs } from '@qf/core';
import { createOnnxBackend } from '@qf/backends/onnx';
import { writeQFormerOnnx } from '@qf/backends/onnx/node';
import { QFORMER_DEFAULTS, type QFormerConfig } from '@qf/io';

/** The benchmark workload: the BLIP-2 default Q-Former, query path, ViT-g features [B, 257, 1408]. */
export interface BenchWorkload {
  readonly name: string;
  readonly spec: QFormerModelSpec;
  readonly numImageTokens: number;
}

/** BLIP-2 defaults (or a small variant for `--quick`). */
export function workload(quick: boolean): BenchWorkload {
  const qformer: QFormerConfig = quick
    ? {
        ...QFORMER_DEFAULTS,
        numHiddenLayers: 4,
        hiddenSize: 256,
        numAttentionHeads: 4,
        intermediateSize: 1024,
        encoderHiddenSize: 384,
      }
    : QFORMER_DEFAULTS;
  return {
    name: quick
      ? 'small (4 layers, hidden 256, features [B, 65, 384])'
      : 'blip2-default (12 layers, hidden 768, features [B, 257, 1408])',
    spec: { qformer, numQueryTokens: 32, textPath: false },
    numImageTokens: quick ? 65 : 257,
  };
}

const mm = (m: number, k: number, n: number) => 2 * m * k * n;

/** FLOPs of one image through the query path (matmuls only): 12.75 GFLOP for BLIP-2 defaults. */
export function gflopPerImage(w: BenchWorkload): number {
  const c = w.spec.qformer;
  const q = w.spec.numQueryTokens;
  const h = c.hiddenSize;
  const n = w.numImageTokens;
  let f = 0;
  for (let i = 0; i < c.numHiddenLayers; i++) {
    f += 4 * mm(q, h, h) + 2 * mm(q, h, q);
    if (i % c.crossAttentionFrequency === 0)
      f += 2 * mm(q, h, h) + 2 * mm(n, c.encoderHiddenSize, h) + 2 * mm(q, h, n);
    f += mm(q, h, c.intermediateSize) + mm(q, c.intermediateSize, h);
  }
  return f / 1e9;
}

/** Random (HF-init) float32 weights of the workload and their byte size. */
export function weights(w: BenchWorkload) {
  const tensors = initParams(qformerParamSpecs(w.spec), { seed: 0 });
  const bytes = [...tensors.values()].reduce((s, t) => s + t.data.byteLength, 0);
  return { tensors, bytes };
}

/** Random image features [b, N, E]. */
export function imageEmbeds(w: BenchWorkload, b: number) {
  const e = w.spec.qformer.encoderHiddenSize;
  const data = new Float32Array(b * w.numImageTokens * e);
  let s = 12345;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    data[i] = s / 2 ** 32 - 0.5;
  }
  return { dtype: 'F32' as const, shape: [b, w.numImageTokens, e], data };
}

/** Exports the workload's query part to `dir` (external data, so ORT can memory-map the weights). */
export async function exportWorkload(
  w: BenchWorkload,
  dir: string,
  weightFormat: 'float32' | 'float16' | 'int8',
): Promise<string> {
  const backend = createOnnxBackend({});
  const model = QFormerModel.fromTensors(backend, w.spec, weights(w).tensors);
  await writeQFormerOnnx(model, dir, { parts: ['query'], weights: weightFormat, externalData: 'always' });
  model.dispose();
  await backend.dispose();
  return `${dir}/qformer_query.onnx`;
}
