import type { TfjsBackend } from '@qf/backends/tfjs';
import { QFormerModel, Rng, initParams, qformerParamSpecs } from '@qf/core';
import type { HostTensor } from '@qf/io';
import * as tf from '@tensorflow/tfjs-core';
import { median, quantile } from './stats.js';
import { type Workload, gflopPerImage } from './workloads.js';

/** One measured (backend, workload, batch) combination. */
export interface BenchResult {
  readonly backend: string;
  readonly workload: string;
  readonly batch: number;
  /** Threads the backend computes with (tfjs-cpu: 1; tfjs-wasm: its thread pool size). */
  readonly threads: number;
  readonly warmupRuns: number;
  /** Timed runs actually made (may be below `requestedRuns` when a time budget lowered it). */
  readonly runs: number;
  readonly requestedRuns: number;
  /** Wall time of each timed `model.run` call (upload, forward, download), ms per batch. */
  readonly timesMs: readonly number[];
  readonly medianMs: number;
  readonly p90Ms: number;
  readonly minMs: number;
  /** batch / median. */
  readonly imagesPerSec: number;
  readonly gflopPerImage: number;
  /** gflopPerImage * batch / median. */
  readonly gflopPerSec: number;
  /** Largest `process.memoryUsage().rss` sampled after each run of this combination, MiB. */
  readonly peakRssMiB: number;
  /** `process.resourceUsage().maxRSS`: the process's high-water mark so far, MiB. */
  readonly maxRssMiB: number;
  /** `tf.memory().numTensors` after the warm-up runs (which may fill backend caches) and after the last timed run. */
  readonly numTensorsBefore: number;
  readonly numTensorsAfter: number;
  /** Why `runs` differs from `requestedRuns`, when it does. */
  readonly note?: string;
}

/** Per-run progress events. */
export interface RunEvent {
  readonly phase: 'warmup' | 'timed';
  /** 1-based index within the phase. */
  readonly index: number;
  /** Runs planned in the phase (timed runs may be lowered after the warm-up). */
  readonly total: number;
  readonly ms: number;
}

/** Options of {@link measureBatch}. */
export interface MeasureOptions {
  /** Timed runs wanted. */
  readonly runs: number;
  /** Untimed warm-up runs first (default 1). */
  readonly warmup?: number;
  /**
   * Time budget for the timed runs, ms: when the warm-up shows `runs` would not fit, fewer runs are
   * made (never below `minRuns`). Unset: always `runs`.
   */
  readonly budgetMs?: number;
  /** Floor for budget-lowered runs (default 3, or `runs` when smaller). */
  readonly minRuns?: number;
  /** Seed of the random image features (default 1). */
  readonly seed?: number;
  /** Threads to report for the backend (default: asked from the backend, see {@link backendThreads}). */
  readonly threads?: number;
  readonly onRun?: (e: RunEvent) => void;
}

const MIB = 1024 * 1024;

/** Random float32 parameters (HF init scheme) for every tensor of a workload's model. */
export function randomParams(w: Workload, seed = 0): Map<string, HostTensor<'F32'>> {
  return initParams(qformerParamSpecs(w.spec), { seed, scheme: 'hf' });
}

/** Standard-normal image features `[batch, N, E]`. */
export function randomImageEmbeds(w: Workload, batch: number, seed = 1): HostTensor<'F32'> {
  const shape = [batch, w.numImageTokens, w.spec.qformer.encoderHiddenSize];
  const data = new Float32Array(shape[0]! * shape[1]! * shape[2]!);
  const rng = new Rng(seed);
  for (let i = 0; i < data.length; i++) data[i] = rng.normal();
  return { dtype: 'F32', shape, data };
}

/** Threads a tfjs backend computes with: tfjs-cpu runs on the JS thread; wasm reports its pool. */
export async function backendThreads(backendName: string): Promise<number> {
  if (backendName !== 'tfjs-wasm') return 1;
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  return wasm.getThreadsCount();
}

async function timedRun(
  model: QFormerModel<tf.Tensor>,
  inputs: Record<string, HostTensor>,
  batch: number,
  hidden: number,
  queries: number,
): Promise<number> {
  const t0 = performance.now();
  const out = await model.run(inputs);
  const ms = performance.now() - t0;
  const q = out['query_output'];
  if (!q || q.shape.join() !== [batch, queries, hidden].join()) {
    throw new Error(
      `query_output has shape [${q?.shape.join(', ')}], expected [${batch}, ${queries}, ${hidden}]`,
    );
  }
  return ms;
}

/**
 * Measures `model.run({ image_embeds })` at one batch size: warm-up runs, then timed runs, sampling
 * RSS after each run and counting live tfjs tensors around the whole measurement.
 */
export async function measureBatch(
  model: QFormerModel<tf.Tensor>,
  w: Workload,
  batch: number,
  options: MeasureOptions,
): Promise<BenchResult> {
  const warmup = options.warmup ?? 1;
  const requested = options.runs;
  if (!(Number.isInteger(requested) && requested >= 1))
    throw new Error(`runs must be an integer >= 1, got ${requested}`);
  const minRuns = Math.min(options.minRuns ?? 3, requested);
  const inputs = { image_embeds: randomImageEmbeds(w, batch, options.seed ?? 1) };
  const { hiddenSize } = w.spec.qformer;
  const q = w.spec.numQueryTokens;
  let peakRss = process.memoryUsage.rss();

  let warmupMs = 0;
  for (let i = 1; i <= warmup; i++) {
    const ms = await timedRun(model, inputs, batch, hiddenSize, q);
    warmupMs = Math.max(warmupMs, ms);
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
    options.onRun?.({ phase: 'warmup', index: i, total: warmup, ms });
  }

  // After warm-up: the first run may build backend caches (e.g. tfjs's transposed weights).
  const numTensorsBefore = tf.memory().numTensors;
  let runs = requested;
  let note: string | undefined;
  if (options.budgetMs !== undefined && warmup > 0 && warmupMs * requested > options.budgetMs) {
    runs = Math.max(minRuns, Math.min(requested, Math.floor(options.budgetMs / warmupMs)));
    if (runs < requested) {
      note = `runs lowered ${requested} -> ${runs}: warm-up took ${(warmupMs / 1000).toFixed(1)} s, budget ${(options.budgetMs / 1000).toFixed(0)} s`;
    }
  }

  const timesMs: number[] = [];
  for (let i = 1; i <= runs; i++) {
    const ms = await timedRun(model, inputs, batch, hiddenSize, q);
    timesMs.push(ms);
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
    options.onRun?.({ phase: 'timed', index: i, total: runs, ms });
  }
  const numTensorsAfter = tf.memory().numTensors;

  const threads = options.threads ?? (await backendThreads(model.backend.name));
  const med = median(timesMs);
  const gflop = gflopPerImage(w);
  return {
    backend: model.backend.name,
    workload: w.name,
    batch,
    threads,
    warmupRuns: warmup,
    runs,
    requestedRuns: requested,
    timesMs,
    medianMs: med,
    p90Ms: quantile(timesMs, 0.9),
    minMs: Math.min(...timesMs),
    imagesPerSec: batch / (med / 1000),
    gflopPerImage: gflop,
    gflopPerSec: (gflop * batch) / (med / 1000),
    peakRssMiB: peakRss / MIB,
    maxRssMiB: (process.resourceUsage().maxRSS * 1024) / MIB,
    numTensorsBefore,
    numTensorsAfter,
    ...(note ? { note } : {}),
  };
}

/**
 * Builds the workload's model on `backend` (random weights unless `params` is given), measures each
 * batch size, and frees the model.
 */
export async function runWorkload(
  backend: TfjsBackend,
  w: Workload,
  batches: readonly number[],
  options: MeasureOptions & { readonly params?: ReadonlyMap<string, HostTensor> },
): Promise<BenchResult[]> {
  const model = QFormerModel.fromTensors(backend, w.spec, options.params ?? randomParams(w));
  try {
    const results: BenchResult[] = [];
    for (const b of batches) results.push(await measureBatch(model, w, b, options));
    return results;
  } finally {
    model.dispose();
  }
}
