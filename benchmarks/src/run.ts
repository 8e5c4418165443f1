import { loadavg } from 'node:os';
import { type TfjsBackend, createTfjsBackend } from '@qf/backends/tfjs';
import { QFormerModel } from '@qf/core';
import type { HostTensor } from '@qf/io';
import * as tf from '@tensorflow/tfjs-core';
import { type MachineInfo, machineInfo } from './machine.js';
import { type BenchResult, backendThreads, measureBatch, randomParams } from './measure.js';
import type { BackendId, BenchOptions } from './options.js';
import type { Progress } from './progress.js';
import { type Workload, getWorkload, gflopPerImage } from './workloads.js';

/** A combination that was not measured, and why. */
export interface Skipped {
  readonly backend: string;
  readonly workload: string;
  readonly batch: number;
  readonly reason: string;
}

/** A backend as it ran. */
export interface BackendInfo {
  readonly name: BackendId;
  readonly threads: number;
  /** tfjs-wasm: SIMD and wasm-threads support as tfjs detected them. */
  readonly simd?: boolean;
  readonly multithread?: boolean;
}

/** Everything one benchmark run produced: written as JSON and rendered as Markdown. */
export interface BenchReport {
  readonly schema: 'qformer-ts-bench/1';
  /** ISO time the run started. */
  readonly date: string;
  readonly mode: 'full' | 'quick';
  /** The arguments the runner got. */
  readonly args: readonly string[];
  readonly machine: MachineInfo;
  readonly backends: readonly BackendInfo[];
  readonly settings: {
    readonly runs: number;
    readonly warmup: number;
    readonly caps: boolean;
    readonly totalBudgetS: number;
    readonly comboBudgetS: number;
    readonly maxBatchS: number;
  };
  readonly workloads: readonly {
    name: string;
    description: string;
    gflopPerImage: number;
    batches: readonly number[];
  }[];
  readonly results: readonly BenchResult[];
  readonly skipped: readonly Skipped[];
  readonly notes: readonly string[];
  /** true when some combination ended with more tfjs tensors than it started with. */
  readonly leaked: boolean;
  readonly totalSeconds: number;
  /** 1/5/15-minute load averages when the run ended. */
  readonly loadAverageEnd: readonly number[];
}

async function activate(
  id: BackendId,
  options: BenchOptions,
): Promise<{ backend: TfjsBackend; info: BackendInfo }> {
  const name = id === 'tfjs-cpu' ? 'cpu' : 'wasm';
  const backend = await createTfjsBackend(
    name,
    options.wasmThreads !== undefined ? { wasmThreads: options.wasmThreads } : {},
  );
  const threads = await backendThreads(backend.name);
  if (name === 'wasm') {
    const simd = Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
    const multithread = Boolean(await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'));
    return { backend, info: { name: id, threads, simd, multithread } };
  }
  return { backend, info: { name: id, threads } };
}

const fmtS = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/** Runs every (workload, backend, batch) combination the options name, within the time caps. */
export async function runBenchmarks(
  options: BenchOptions,
  progress: Progress,
  args: readonly string[] = [],
): Promise<BenchReport> {
  const date = new Date().toISOString();
  const machine = machineInfo();
  const t0 = performance.now();
  const elapsed = (): number => performance.now() - t0;
  const results: BenchResult[] = [];
  const skipped: Skipped[] = [];
  const notes: string[] = [];
  const backendInfo = new Map<BackendId, BackendInfo>();
  const workloads: Workload[] = options.workloads.map(getWorkload);
  const batchesOf = (w: Workload): number[] => [...(options.batches ?? w.batches)].sort((a, b) => a - b);
  const total = workloads.reduce((n, w) => n + batchesOf(w).length * options.backends.length, 0);
  let index = 0;

  for (const w of workloads) {
    const batches = batchesOf(w);
    let params: ReadonlyMap<string, HostTensor> | undefined;
    for (const id of options.backends) {
      const skip = (batch: number, reason: string): void => {
        index++;
        skipped.push({ backend: id, workload: w.name, batch, reason });
        progress.log(`[${index}/${total}] ${id} ${w.name} B=${batch}: skipped (${reason})`);
      };
      if (options.caps && elapsed() > options.totalBudgetS * 1000) {
        for (const b of batches) skip(b, `total time cap of ${options.totalBudgetS} s reached`);
        continue;
      }
      let active: { backend: TfjsBackend; info: BackendInfo };
      try {
        active = await activate(id, options);
      } catch (e) {
        for (const b of batches) skip(b, `backend unavailable: ${(e as Error).message}`);
        continue;
      }
      if (!backendInfo.has(id)) backendInfo.set(id, active.info);
      if (!params) {
        progress.log(`${w.name}: random weights (${gflopPerImage(w).toFixed(2)} GFLOP per image)`);
        params = randomParams(w);
      }
      const model = QFormerModel.fromTensors(active.backend, w.spec, params);
      let perImageMs: number | undefined;
      try {
        for (const batch of batches) {
          const estMs = perImageMs === undefined ? undefined : perImageMs * batch;
          if (options.caps && estMs !== undefined && estMs > options.maxBatchS * 1000) {
            skip(
              batch,
              `estimated ${fmtS(estMs)} per batch from the smaller batch, over the ${options.maxBatchS} s limit; --no-caps runs it`,
            );
            continue;
          }
          const remainingMs = options.totalBudgetS * 1000 - elapsed();
          const needMs = estMs === undefined ? 0 : estMs * (options.warmup + Math.min(3, options.runs));
          if (options.caps && needMs > remainingMs) {
            skip(
              batch,
              `would not fit the ${options.totalBudgetS} s total cap (needs about ${fmtS(needMs)}, ${fmtS(Math.max(0, remainingMs))} left)`,
            );
            continue;
          }
          index++;
          const label = `[${index}/${total}] ${id} ${w.name} B=${batch}`;
          progress.start(label, options.warmup + options.runs);
          const r = await measureBatch(model, w, batch, {
            runs: options.runs,
            warmup: options.warmup,
            threads: active.info.threads,
            ...(options.caps
              ? { budgetMs: Math.min(options.comboBudgetS * 1000, Math.max(0, remainingMs)) }
              : {}),
            onRun: (e) => progress.update(e, options.warmup),
          });
          results.push(r);
          perImageMs = r.medianMs / batch;
          const leak =
            r.numTensorsAfter !== r.numTensorsBefore
              ? ` LEAK ${r.numTensorsBefore} -> ${r.numTensorsAfter} tensors`
              : '';
          progress.stop(
            `${label}: median ${r.medianMs.toFixed(1)} ms, ${r.gflopPerSec.toFixed(2)} GFLOP/s (${r.runs} runs)${leak}`,
          );
        }
      } finally {
        model.dispose();
      }
    }
  }

  if (options.caps) {
    notes.push(
      `Time caps on: timed runs per combination lowered to fit ${options.comboBudgetS} s (min 3), a batch estimated ` +
        `over ${options.maxBatchS} s (from the measured smaller batch) is skipped, and the whole run stops starting ` +
        `combinations past ${options.totalBudgetS} s. Pass --no-caps to measure everything with --runs runs.`,
    );
  }
  const lowered = results.filter((r) => r.note);
  if (lowered.length > 0)
    notes.push(`Runs lowered for ${lowered.length} combination(s); see the runs column.`);
  const leaked = results.some((r) => r.numTensorsAfter !== r.numTensorsBefore);
  if (leaked) notes.push('LEAK: some combinations ended with more tfjs tensors than they started with.');

  return {
    schema: 'qformer-ts-bench/1',
    date,
    mode: options.quick ? 'quick' : 'full',
    args,
    machine,
    backends: [...backendInfo.values()],
    settings: {
      runs: options.runs,
      warmup: options.warmup,
      caps: options.caps,
      totalBudgetS: options.totalBudgetS,
      comboBudgetS: options.comboBudgetS,
      maxBatchS: options.maxBatchS,
    },
    workloads: workloads.map((w) => ({
      name: w.name,
      description: w.description,
      gflopPerImage: gflopPerImage(w),
      batches: batchesOf(w),
    })),
    results,
    skipped,
    notes,
    leaked,
    totalSeconds: elapsed() / 1000,
    loadAverageEnd: loadavg().map((x) => Math.round(x * 100) / 100),
  };
}
