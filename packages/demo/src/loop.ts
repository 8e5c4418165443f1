import type { LossFn, ParamStore, TrainingBackend } from '@qf/core';
import type { HostTensor } from '@qf/io';
import { createRng, deriveSeed, shuffleInPlace } from '@qf/shapes';
import { DemoError } from './errors.js';
import { DemoAdamW, warmupCosine } from './optim.js';
import type { PhaseReporter } from './report.js';

/** Epoch-wise shuffled mini-batches of row indices, from a seed. */
export class Batcher {
  private order: number[] = [];
  private pos = 0;
  private readonly rng;
  constructor(
    private readonly n: number,
    private readonly batch: number,
    seed: number,
  ) {
    if (batch > n) throw new DemoError('DEMO_OPTIONS', `batch size ${batch} exceeds the ${n} examples`);
    this.rng = createRng(seed);
  }
  next(): Int32Array {
    if (this.pos + this.batch > this.order.length) {
      this.order = shuffleInPlace(
        Array.from({ length: this.n }, (_, i) => i),
        this.rng,
      );
      this.pos = 0;
    }
    const out = Int32Array.from(this.order.slice(this.pos, this.pos + this.batch));
    this.pos += this.batch;
    return out;
  }
}

/** A training phase: what to optimise, how, and for how long. */
export interface PhaseSpec<T, K extends string> {
  readonly steps: number;
  readonly lr: number;
  readonly warmup: number;
  readonly weightDecay: number;
  readonly trainable: readonly string[];
  readonly shapes: ReadonlyMap<string, readonly number[]>;
  readonly loss: LossFn<T, K>;
  /** The inputs of step `i`. */
  readonly batch: (step: number) => Record<string, HostTensor> | Promise<Record<string, HostTensor>>;
  /** Called after each optimiser step (e.g. clamping the temperature). */
  readonly after?: (step: number) => Promise<void>;
}

/** What a phase's loop measured. */
export interface PhaseRun {
  readonly losses: number[];
  readonly seconds: number;
  readonly stepsPerSecond: number;
}

export const noDecay = (name: string): boolean =>
  name.endsWith('.bias') ||
  /norm|LayerNorm|embedding|embeddings|query_tokens|temp$|class_embedding|position_embedding/.test(name);

/** Runs an AdamW loop (warm-up + cosine LR) with `valueAndGrad`; reports every step. */
export async function trainPhase<T, K extends string>(
  backend: TrainingBackend<T>,
  params: ParamStore<T>,
  spec: PhaseSpec<T, K>,
  reporter: PhaseReporter,
): Promise<PhaseRun> {
  const opt = new DemoAdamW(backend, params, spec.trainable, spec.shapes, {
    weightDecay: spec.weightDecay,
    noDecay,
  });
  const losses: number[] = [];
  const t0 = performance.now();
  try {
    for (let step = 0; step < spec.steps; step++) {
      const inputs = await spec.batch(step);
      const { loss, grads } = await backend.valueAndGrad(spec.loss, params, spec.trainable, inputs);
      try {
        if (!Number.isFinite(loss))
          throw new DemoError('DEMO_DIVERGED', `${reporter.name}: loss is ${loss} at step ${step + 1}`);
        await opt.apply(grads, warmupCosine(step, spec.steps, spec.lr, spec.warmup));
      } finally {
        backend.disposeParams(grads);
      }
      await spec.after?.(step);
      losses.push(loss);
      reporter.step(step + 1, loss);
    }
  } finally {
    opt.dispose();
  }
  const seconds = (performance.now() - t0) / 1000;
  return { losses, seconds, stepsPerSecond: spec.steps / Math.max(seconds, 1e-9) };
}

/** Mean of the last `n` values. */
export function tailMean(xs: readonly number[], n: number): number {
  const tail = xs.slice(-n);
  return tail.reduce((a, b) => a + b, 0) / Math.max(1, tail.length);
}
