/**
 * Long training runs must not leak: `Stage1Trainer` (with a JSONL log and a checkpoint every 10
 * steps, keeping one) and a shorter `Stage2Trainer` run (frozen OPT) on the tiny model, tfjs-cpu.
 * After a warm-up, the tfjs tensor count must stay exactly flat (parameters + AdamW moments, nothing
 * else survives a step, a save or a log line), and the garbage-collected JS heap, ArrayBuffer memory
 * and RSS must stay within a bound derived from the warm-up sample (the approach of
 * `packages/backends/test/long-run.test.ts`). Disposing the trainer and its parameters must bring
 * the tensor count back to where it was before the run.
 *
 * Steps: `QF_LONG_TRAIN_STEPS` stage-1 steps (default 60, the CI mode) and a quarter of that (at
 * least 20) stage-2 steps; `pnpm long-run:train` runs 500 (+ 125).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { type TfjsBackend, createTfjsBackend } from '@qf/backends/tfjs';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Stage1Trainer,
  type Stage1TrainerOptions,
  Stage2Trainer,
  type TrainReporter,
  warmupCosine,
} from '../src/index.js';
import { checkpointer, jsonlReporter, latestCheckpoint } from '../src/node.js';
import {
  CONFIG,
  SPEC,
  TEXT,
  opt,
  stage1Batch,
  stage1Tensors,
  stage2Batch,
  stage2Tensors,
} from './fixtures/tiny.js';

const STEPS = Math.max(40, Math.floor(Number(process.env.QF_LONG_TRAIN_STEPS ?? 60)) || 60);
const STAGE2_STEPS = Math.max(20, Math.round(STEPS / 4));
/** Steps before the reference sample: tfjs kernels, V8 code and the checkpoint path all warmed up. */
const warmupOf = (steps: number) => Math.max(10, Math.round(steps / 10));
const SAMPLES = 12;
const MB = 2 ** 20;

v8.setFlagsFromString('--expose-gc');
/** A full, synchronous garbage collection (exposed at run time; vitest starts workers without the flag). */
const gc = vm.runInNewContext('gc') as () => void;

interface Sample {
  step: number;
  tensors: number;
  heapUsed: number;
  arrayBuffers: number;
  rss: number;
}

function sample(step: number): Sample {
  gc();
  gc();
  const m = process.memoryUsage();
  return {
    step,
    tensors: tf.memory().numTensors,
    heapUsed: m.heapUsed,
    arrayBuffers: m.arrayBuffers,
    rss: m.rss,
  };
}

/**
 * Allowed growth after warm-up: the larger of a floor and a quarter of the warm-up value, as for
 * the inference long run. Measured here (2 cores, tfjs-cpu, 500 + 125 steps with checkpoints): after
 * a full GC the heap stayed within +0.5 MB of the warm-up sample and ArrayBuffers within +0.1 MB,
 * while RSS moved between -9 and +5 MB (with the allocator's rhythm, not a trend); the floors leave
 * room for V8's own late growth (optimized code, inline caches) and for the allocator keeping freed
 * pages (RSS). A leak of `floor / steps` bytes per step or more fails: 16 MB / 50 steps
 * = 330 KB (heap, ArrayBuffers) and 1.3 MB (RSS) per step in CI mode, 36 KB and 145 KB at 500 steps.
 * The tensor count has no slack at all.
 */
function allowedGrowth(warm: Sample): { heapUsed: number; arrayBuffers: number; rss: number } {
  return {
    heapUsed: Math.max(16 * MB, 0.25 * warm.heapUsed),
    arrayBuffers: Math.max(16 * MB, 0.25 * warm.arrayBuffers),
    rss: Math.max(64 * MB, 0.25 * warm.rss),
  };
}

/** What went wrong in a run's samples (empty when the tensor count is flat and memory bounded). */
function violations(samples: Sample[], label: string): string[] {
  const [warm, ...rest] = samples;
  if (!warm || rest.length < 2) return [`${label}: only ${samples.length} samples`];
  if (process.env.QF_LONG_DEBUG) {
    const mb = (x: number) => (x / MB).toFixed(1);
    for (const s of samples)
      console.log(
        `${label} step ${s.step}: ${s.tensors} tensors, heap ${mb(s.heapUsed)} MB, arrayBuffers ${mb(s.arrayBuffers)} MB, rss ${mb(s.rss)} MB`,
      );
  }
  const bound = allowedGrowth(warm);
  const out: string[] = [];
  for (const s of rest) {
    if (s.tensors !== warm.tensors)
      out.push(`${label} step ${s.step}: ${s.tensors} tfjs tensors, ${warm.tensors} after warm-up`);
    for (const k of ['heapUsed', 'arrayBuffers', 'rss'] as const) {
      if (s[k] - warm[k] > bound[k])
        out.push(
          `${label} step ${s.step}: ${k} grew ${((s[k] - warm[k]) / MB).toFixed(1)} MB since warm-up (bound ${(bound[k] / MB).toFixed(1)} MB)`,
        );
    }
  }
  return out;
}

/**
 * A reporter that samples after step `warmup` and then `SAMPLES` times up to `total` (after the
 * step's tensors are released; the checkpoint of that step comes after it, and is covered by the
 * next sample). `leak` (control test) runs after every step.
 */
function sampler(
  total: number,
  leak?: (step: number) => void,
): { samples: Sample[]; reporter: TrainReporter } {
  const warmup = warmupOf(total);
  const every = Math.max(1, Math.floor((total - warmup) / SAMPLES));
  const samples: Sample[] = [];
  let lastLoss = Number.NaN;
  return {
    samples,
    reporter: {
      step: (m) => {
        lastLoss = m.loss;
        expect(Number.isFinite(lastLoss)).toBe(true);
        leak?.(m.step);
        if (m.step >= warmup && ((m.step - warmup) % every === 0 || m.step === total))
          samples.push(sample(m.step));
      },
    },
  };
}

let backend: TfjsBackend;
let root: string;
beforeAll(async () => {
  backend = await createTfjsBackend('cpu');
  root = await mkdtemp(join(tmpdir(), 'qf-long-train-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function schedule(totalSteps: number) {
  return warmupCosine({ initLr: 2e-3, minLr: 1e-4, warmupSteps: 5, warmupStartLr: 1e-4, totalSteps });
}

/** Stage-1 options of the long run: every step's batch differs (64 distinct batches), logged, checkpointed. */
function stage1Options(total: number, out: string, reporter: TrainReporter): Stage1TrainerOptions<tf.Tensor> {
  return {
    spec: SPEC,
    params: backend.createParams(stage1Tensors(31)),
    text: TEXT,
    data: (step: number) => stage1Batch(step, 64),
    totalSteps: total,
    schedule: schedule(total),
    maxGradNorm: 1,
    seed: 3,
    reporters: [reporter, jsonlReporter(join(out, 'metrics.jsonl'))],
    checkpoint: checkpointer(out, { every: 10, config: CONFIG, keepLast: 1 }),
  };
}

function stage2Trainer(total: number, reporter: TrainReporter): Stage2Trainer<tf.Tensor> {
  const lm = opt();
  return new Stage2Trainer(backend, {
    spec: SPEC,
    lm,
    params: backend.createParams(stage2Tensors(lm, 5)),
    data: (step: number) => stage2Batch('opt', step, 64),
    totalSteps: total,
    schedule: schedule(total),
    seed: 4,
    reporters: [reporter],
  });
}

const TIMEOUT = 60_000 + (STEPS + STAGE2_STEPS) * 400;

describe(`long training runs (${STEPS} stage-1 + ${STAGE2_STEPS} stage-2 steps, tfjs-cpu)`, () => {
  it(
    'stage 1 with logging and checkpoints: tensor count exactly flat, heap / ArrayBuffers / RSS bounded',
    async () => {
      const out = join(root, 'stage1');
      const before = tf.memory().numTensors;
      const { samples, reporter } = sampler(STEPS);
      const trainer = new Stage1Trainer(backend, stage1Options(STEPS, out, reporter));
      const summary = await trainer.train();
      expect(summary.step).toBe(STEPS);
      expect(violations(samples, 'stage 1')).toEqual([]);
      // the loop did what it says: every step logged, the last one checkpointed
      const log = (await readFile(join(out, 'metrics.jsonl'), 'utf8')).trim().split('\n');
      expect(log.filter((l) => l.startsWith('{"type":"step"')).length).toBe(STEPS);
      expect(await latestCheckpoint(out)).toBe(join(out, `checkpoint-${String(STEPS).padStart(6, '0')}`));
      trainer.dispose();
      backend.disposeParams(trainer.params);
      expect(tf.memory().numTensors).toBe(before);
    },
    TIMEOUT,
  );

  it(
    'stage 2 (frozen OPT): tensor count exactly flat, heap / ArrayBuffers / RSS bounded',
    async () => {
      const before = tf.memory().numTensors;
      const { samples, reporter } = sampler(STAGE2_STEPS);
      const trainer = stage2Trainer(STAGE2_STEPS, reporter);
      const summary = await trainer.train();
      expect(summary.step).toBe(STAGE2_STEPS);
      expect(violations(samples, 'stage 2')).toEqual([]);
      trainer.dispose();
      backend.disposeParams(trainer.params);
      expect(tf.memory().numTensors).toBe(before);
    },
    TIMEOUT,
  );

  it(
    'control (stage 2): the same harness flags a tensor kept per step and 1 MB retained per step',
    async () => {
      const total = 40;
      const kept: tf.Tensor[] = [];
      const retained: Float32Array[] = [];
      const { samples, reporter } = sampler(total, (step) => {
        kept.push(tf.scalar(step));
        retained.push(new Float32Array(MB / 4)); // 30 MB after warm-up: above the 16 MB floor
      });
      const trainer = stage2Trainer(total, reporter);
      try {
        await trainer.train();
        const found = violations(samples, 'control');
        expect(found.some((v) => /tfjs tensors/.test(v))).toBe(true);
        expect(found.some((v) => /arrayBuffers grew/.test(v))).toBe(true);
      } finally {
        for (const t of kept) t.dispose();
        retained.length = 0;
        trainer.dispose();
        backend.disposeParams(trainer.params);
      }
    },
    TIMEOUT,
  );
});
