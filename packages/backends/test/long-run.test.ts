/**
 * Long inference runs: `QFormerModel` called batch after batch (every entry point in turn, batch
 * sizes and sequence lengths varying) must not leak. After a warm-up, backend resources (tfjs tensor
 * count, ONNX Runtime session count) must stay exactly flat, and the garbage-collected JS heap,
 * ArrayBuffer memory and RSS must stay within a bound derived from the warm-up sample.
 *
 * Batches: `QF_LONG_RUNS` (default 150 per backend, the CI mode); `pnpm long-run` runs 1000.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { type Backend, QFormerModel } from '@qf/core';
import { createOnnxBackend } from '@qf/backends/onnx';
import { createTfjsBackend } from '@qf/backends/tfjs';
import type { HostTensor } from '@qf/io';
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { lengthsMask } from './helpers.js';
import { drawRandomCase } from './random-case.js';

const BATCHES = Math.max(30, Number(process.env.QF_LONG_RUNS ?? 150) || 150);
const WARMUP = Math.max(10, Math.round(BATCHES / 10));
const SAMPLES = 20;
const MB = 2 ** 20;

v8.setFlagsFromString('--expose-gc');
/** A full, synchronous garbage collection (exposed at run time; vitest starts workers without the flag). */
const gc = vm.runInNewContext('gc') as () => void;

interface Sample {
  batch: number;
  /** Backend resources: tfjs tensors or ORT sessions. */
  resources: number;
  heapUsed: number;
  arrayBuffers: number;
  rss: number;
}

function sample(batch: number, resources: number): Sample {
  gc();
  gc();
  const m = process.memoryUsage();
  return { batch, resources, heapUsed: m.heapUsed, arrayBuffers: m.arrayBuffers, rss: m.rss };
}

/**
 * Allowed growth after warm-up, derived from the warm-up sample: the larger of a floor and a
 * fraction of the warm-up value. After a full GC the heap of this loop is stable to about a
 * megabyte (measured here on 2 cores: +0.6 MB heap and +2 MB RSS over 6000 tfjs-cpu batches, the
 * growth flattening out, i.e. V8 warming up rather than a leak); the floors leave room for V8's own
 * late growth (optimized code, inline caches) and the allocator keeping freed pages (RSS). A leak of
 * `floor / batches` bytes per batch or more fails: about 110 KB (heap, ArrayBuffers) and 440 KB
 * (RSS) per batch at 150 batches, 17 KB and 67 KB at 1000.
 */
function allowedGrowth(warm: Sample): { heapUsed: number; arrayBuffers: number; rss: number } {
  return {
    heapUsed: Math.max(16 * MB, 0.25 * warm.heapUsed),
    arrayBuffers: Math.max(16 * MB, 0.25 * warm.arrayBuffers),
    rss: Math.max(64 * MB, 0.25 * warm.rss),
  };
}

/** What went wrong in a run's samples (empty when resources are flat and memory bounded). */
function violations(samples: Sample[]): string[] {
  const [warm, ...rest] = samples;
  if (!warm) return ['no samples'];
  if (process.env.QF_LONG_DEBUG) {
    const mb = (x: number) => (x / MB).toFixed(1);
    for (const s of samples)
      console.log(
        `batch ${s.batch}: resources ${s.resources}, heap ${mb(s.heapUsed)} MB, arrayBuffers ${mb(s.arrayBuffers)} MB, rss ${mb(s.rss)} MB`,
      );
  }
  const bound = allowedGrowth(warm);
  const out: string[] = [];
  for (const s of rest) {
    if (s.resources !== warm.resources)
      out.push(`batch ${s.batch}: ${s.resources} backend resources, ${warm.resources} after warm-up`);
    for (const k of ['heapUsed', 'arrayBuffers', 'rss'] as const) {
      if (s[k] - warm[k] > bound[k]) {
        out.push(
          `batch ${s.batch}: ${k} grew ${((s[k] - warm[k]) / MB).toFixed(1)} MB since warm-up (bound ${(bound[k] / MB).toFixed(1)} MB)`,
        );
      }
    }
  }
  return out;
}

/** A pool of batches with varying batch size, image tokens and text length (reused, so the test itself allocates nothing per batch). */
function batchPool(enc: number, seed: number): Record<string, HostTensor>[] {
  let s = seed;
  const rand = () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  return Array.from({ length: 8 }, () => {
    const b = int(1, 3);
    const n = int(2, 7);
    const t = int(1, 6);
    return {
      image_embeds: {
        dtype: 'F32',
        shape: [b, n, enc],
        data: Float32Array.from({ length: b * n * enc }, () => rand() * 2 - 1),
      },
      image_attention_mask: lengthsMask([n, ...Array.from({ length: b - 1 }, () => int(1, n))], n),
      input_ids: { dtype: 'I32', shape: [b, t], data: Int32Array.from({ length: b * t }, () => int(1, 29)) },
      attention_mask: lengthsMask([t, ...Array.from({ length: b - 1 }, () => int(1, t))], t),
    };
  });
}

/** One batch: the entry points in turn, outputs dropped at once. */
async function step(
  model: QFormerModel<unknown>,
  batch: Record<string, HostTensor>,
  i: number,
): Promise<number> {
  const img = batch['image_embeds']!;
  const ids = batch['input_ids']!;
  const mask = batch['attention_mask'];
  const imgMask = batch['image_attention_mask'];
  let touched = 0;
  switch (i % 5) {
    case 0:
      touched = Object.keys(await model.run(batch)).length;
      break;
    case 1:
      touched = (await model.extractFeatures(img, imgMask)).queryOutput.data.length;
      break;
    case 2:
      touched = (await model.encodeText(ids, mask)).textOutput.data.length;
      break;
    case 3:
      touched = (await model.score(img, ids, mask, imgMask)).itm.data.length;
      break;
    default: {
      // one image against every text of the batch
      const one: HostTensor = {
        ...img,
        shape: [1, ...img.shape.slice(1)],
        data: (img.data as Float32Array).subarray(0, img.data.length / img.shape[0]!),
      };
      touched = (await model.rerank(one, ids, mask)).itm.data.length;
    }
  }
  return touched;
}

/**
 * Runs `batches` batches after `WARMUP` warm-up batches, sampling backend resources and memory
 * `SAMPLES` times; `leak` (for the control test) runs after each batch.
 */
async function longRun(
  model: QFormerModel<unknown>,
  resources: () => number,
  batches: number,
  leak?: (i: number) => void,
): Promise<Sample[]> {
  const pool = batchPool(model.spec.qformer.encoderHiddenSize, 7);
  for (let i = 0; i < WARMUP; i++) await step(model, pool[i % pool.length]!, i);
  const samples = [sample(0, resources())];
  const every = Math.max(1, Math.floor(batches / SAMPLES));
  for (let i = 1; i <= batches; i++) {
    expect(await step(model, pool[i % pool.length]!, i)).toBeGreaterThan(0);
    leak?.(i);
    if (i % every === 0 || i === batches) samples.push(sample(i, resources()));
  }
  return samples;
}

const TIMEOUT = 60_000 + BATCHES * 200;

describe(`long inference runs (${BATCHES} batches)`, () => {
  it(
    'tfjs-cpu: tensor count exactly flat, heap / ArrayBuffers / RSS bounded',
    async () => {
      const { spec, tensors } = drawRandomCase(3);
      const backend = await createTfjsBackend('cpu');
      const model = QFormerModel.fromTensors(backend, spec, tensors) as QFormerModel<unknown>;
      try {
        const samples = await longRun(model, () => tf.memory().numTensors, BATCHES);
        expect(violations(samples)).toEqual([]);
        // and exactly flat between samples too: the count after warm-up is the parameters only
        expect(samples.every((s) => s.resources === samples[0]!.resources)).toBe(true);
      } finally {
        model.dispose();
      }
    },
    TIMEOUT,
  );

  it(
    'onnx (onnxruntime-node): session count exactly flat, heap / ArrayBuffers / RSS bounded',
    async () => {
      const { spec, tensors } = drawRandomCase(4);
      const backend = createOnnxBackend({ ort, intraOpNumThreads: 1 });
      const model = QFormerModel.fromTensors(backend as Backend<unknown>, spec, tensors);
      try {
        const samples = await longRun(model, () => backend.sessionCount, BATCHES);
        expect(samples[0]!.resources).toBeGreaterThan(0);
        expect(violations(samples)).toEqual([]);
      } finally {
        model.dispose();
        await backend.dispose();
      }
    },
    TIMEOUT,
  );

  it(
    'control: the same harness flags a leaked tensor per batch and 0.5 MB of retained memory per batch',
    async () => {
      const { spec, tensors } = drawRandomCase(3);
      const model = QFormerModel.fromTensors(
        await createTfjsBackend('cpu'),
        spec,
        tensors,
      ) as QFormerModel<unknown>;
      const kept: tf.Tensor[] = [];
      const retained: Float32Array[] = [];
      try {
        const batches = 60;
        const samples = await longRun(
          model,
          () => tf.memory().numTensors,
          batches,
          (i) => {
            kept.push(tf.scalar(i));
            // 30 x 1 MB over the run: above the 16 MB floor of the heap/ArrayBuffer bound
            if (i % 2 === 0) retained.push(new Float32Array(MB / 4));
          },
        );
        const found = violations(samples);
        expect(found.some((v) => /backend resources/.test(v))).toBe(true);
        expect(found.some((v) => /arrayBuffers grew/.test(v))).toBe(true);
      } finally {
        for (const t of kept) t.dispose();
        retained.length = 0;
        model.dispose();
      }
    },
    TIMEOUT,
  );
});
