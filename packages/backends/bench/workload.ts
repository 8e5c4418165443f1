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

/** The workload with the Q-Former text path and retrieval heads (ITM re-ranking). */
export function withTextPath(w: BenchWorkload): BenchWorkload {
  return { ...w, spec: { ...w.spec, textPath: true, retrievalHeads: { imageTextHiddenSize: 256 } } };
}

/**
 * FLOPs (matmuls only) of the ITM pass for `texts` texts of length `l` against one image: with the
 * image shared, cross-attention K/V are projected once; repeated, once per text.
 */
export function itmGflop(w: BenchWorkload, texts: number, l: number, shared: boolean): number {
  const c = w.spec.qformer;
  const q = w.spec.numQueryTokens;
  const h = c.hiddenSize;
  const n = w.numImageTokens;
  const rows = q + l;
  let perText = 0;
  let kv = 0;
  for (let i = 0; i < c.numHiddenLayers; i++) {
    perText += 4 * mm(rows, h, h) + 2 * mm(rows, h, rows);
    if (i % c.crossAttentionFrequency === 0) {
      perText += 2 * mm(q, h, h) + 2 * mm(q, h, n);
      kv += 2 * mm(n, c.encoderHiddenSize, h);
    }
    perText += 2 * mm(rows, h, c.intermediateSize);
  }
  return (texts * perText + (shared ? 1 : texts) * kv) / 1e9;
}

/** Random token ids [t, l] (id 101 first, as BERT's [CLS]) and a mask with lengths from l/2 to l. */
export function texts(w: BenchWorkload, t: number, l: number) {
  const ids = new BigInt64Array(t * l);
  const mask = new BigInt64Array(t * l);
  let s = 777;
  for (let i = 0; i < t; i++) {
    const len = Math.ceil(l / 2) + (i % (Math.floor(l / 2) + 1));
    for (let j = 0; j < l; j++) {
      s = (s * 1103515245 + 12345) >>> 0;
      ids[i * l + j] = j === 0 ? 101n : BigInt(1000 + (s % (w.spec.qformer.vocabSize - 1000)));
      mask[i * l + j] = j < len ? 1n : 0n;
    }
  }
  return {
    input_ids: { dtype: 'I64' as const, shape: [t, l], data: ids },
    attention_mask: { dtype: 'I64' as const, shape: [t, l], data: mask },
  };
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
