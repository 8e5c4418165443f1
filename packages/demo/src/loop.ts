import type { GradResult, LossFn, ParamStore, TrainingBackend } from '@qf/core';
import type { HostTensor } from '@qf/io';
import { createRng, shuffleInPlace } from '@qf/shapes';
import { DemoError } from './errors.js';
import { AdamW, lavisDecay, warmupCosine } from '@qf/train';
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
  /** Linear warm-up steps (default 5% of `steps`, at least 1), then cosine decay to 5% of `lr`. */
  readonly warmup?: number;
  readonly weightDecay: number;
  readonly trainable: readonly string[];
  /** The loss and gradients of step `i` (see {@link lossStep}). */
  readonly compute: (step: number) => Promise<GradResult<T, K>>;
  /** Called after each optimiser step (e.g. clamping the temperature). */
  readonly after?: (step: number) => Promise<void>;
}

/** What a phase's loop measured. */
export interface PhaseRun {
  readonly losses: number[];
  /** Per-step values of the loss parts the loss function returned (e.g. `loss_itc`). */
  readonly parts: Record<string, number[]>;
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
  const opt = new AdamW(backend, params, spec.trainable, {
    lr: spec.lr,
    weightDecay: spec.weightDecay,
    // LAVIS's split, and no decay for embeddings, positions and query tokens either.
    decay: (name, shape) => lavisDecay(name, shape) && !noDecay(name),
  });
  const warmup = spec.warmup ?? Math.max(1, Math.round(spec.steps * 0.05));
  const schedule = warmupCosine({
    initLr: spec.lr,
    minLr: 0.05 * spec.lr,
    warmupSteps: warmup,
    warmupStartLr: spec.lr / warmup,
    totalSteps: spec.steps,
  });
  const losses: number[] = [];
  const parts: Record<string, number[]> = {};
  const t0 = performance.now();
  try {
    for (let step = 0; step < spec.steps; step++) {
      const { loss, grads, outputs } = await spec.compute(step);
      for (const [k, v] of Object.entries(outputs)) {
        if (k === 'loss' || !v || v.shape.length !== 0) continue;
        const list = parts[k] ?? [];
        list.push((v.data as Float32Array)[0] as number);
        parts[k] = list;
      }
      try {
        if (!Number.isFinite(loss))
          throw new DemoError('DEMO_DIVERGED', `${reporter.name}: loss is ${loss} at step ${step + 1}`);
        await opt.step(grads, schedule.lr(step));
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
  return { losses, parts, seconds, stepsPerSecond: spec.steps / Math.max(seconds, 1e-9) };
}

/** A `compute` for {@link trainPhase} from a loss function and a batch maker. */
export function lossStep<T, K extends string = never>(
  backend: TrainingBackend<T>,
  params: ParamStore<T>,
  trainable: readonly string[],
  loss: LossFn<T, K>,
  batch: (step: number) => Record<string, HostTensor>,
): (step: number) => Promise<GradResult<T, K>> {
  return (step) => backend.valueAndGrad(loss, params, trainable, batch(step));
}

/** Mean of the last `n` values. */
export function tailMean(xs: readonly number[], n: number): number {
  const tail = xs.slice(-n);
  return tail.reduce((a, b) => a + b, 0) / Math.max(1, tail.length);
}
