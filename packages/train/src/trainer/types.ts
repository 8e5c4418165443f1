import type { HostTensor } from '@qf/io';
import type { AdamWState } from '../optim/adamw.js';
import type { ScheduleSpec } from '../optim/schedule.js';

/**
 * Where batches come from. Every form must be deterministic (the same batches in the same order for
 * the same seed), which exact resume relies on:
 * - a function of the 0-based step (stateless: resuming at step k just asks for batch k);
 * - `{ iterate(startStep) }`: a fresh iterable that starts at batch `startStep`;
 * - a plain (async) iterable: on resume the trainer re-reads and drops the batches already used, so
 *   pass a fresh iterable that yields the same sequence again.
 */
export type DataSource<B> =
  | ((step: number) => B | Promise<B>)
  | { readonly iterate: (startStep: number) => AsyncIterable<B> | Iterable<B> }
  | AsyncIterable<B>
  | Iterable<B>;

/** What one optimizer step reports (also one line of the JSONL log, with `type: 'step'`). */
export interface StepMetrics {
  readonly type: 'step';
  /** Steps completed, this one included (1-based). */
  readonly step: number;
  readonly totalSteps: number;
  /** Learning rate used by this step. */
  readonly lr: number;
  /** Total loss of the batch (before the update). */
  readonly loss: number;
  /** Loss components (stage 1: `loss_itc`, `loss_itm`, `loss_lm`). */
  readonly parts: Readonly<Record<string, number>>;
  /** Global gradient norm before clipping (present when clipping is on). */
  readonly gradNorm?: number;
  /** Extra scalars (stage 1: `temp` after the step and its clamp). */
  readonly extra?: Readonly<Record<string, number>>;
  /** This step's wall time, ms. */
  readonly stepMs: number;
  /** 1000 / `stepMs`. */
  readonly stepsPerSec: number;
  /** Seconds since `train` started (this process). */
  readonly elapsedS: number;
}

/** An evaluation result (a JSONL line with `type: 'eval'`). */
export interface EvalMetrics {
  readonly type: 'eval';
  readonly step: number;
  readonly metrics: Readonly<Record<string, number>>;
}

/** Receives progress; every method optional. */
export interface TrainReporter {
  start?(info: { readonly stage: string; readonly startStep: number; readonly totalSteps: number }): void;
  step?(m: StepMetrics): void;
  eval?(m: EvalMetrics): void;
  /** A checkpoint was written after `step` steps. */
  checkpoint?(info: { readonly step: number; readonly dir: string }): void;
  end?(summary: TrainSummary): void | Promise<void>;
}

/** What `train()` returns. */
export interface TrainSummary {
  readonly stage: string;
  /** Steps completed in total (including those before a resume). */
  readonly step: number;
  /** Steps taken by this call. */
  readonly stepsRun: number;
  readonly lastLoss: number | undefined;
  /** Steps per second over this call (0 when it took no step). */
  readonly stepsPerSec: number;
  readonly elapsedS: number;
}

/** How the data position is kept (see {@link DataSource}). */
export interface DataState {
  readonly kind: 'function' | 'iterate' | 'iterable';
  /** Batches used so far. */
  readonly consumed: number;
}

/** The JSON half of a trainer's state (`trainer_state.json`). */
export interface TrainerStateJson {
  readonly format: 'qf-trainer-state';
  readonly version: 1;
  readonly stage: string;
  /** Steps completed. */
  readonly step: number;
  readonly totalSteps: number;
  /** The schedule; its position is `step`. */
  readonly schedule: ScheduleSpec;
  readonly optimizer: {
    readonly name: 'adamw';
    readonly betas: readonly [number, number];
    readonly eps: number;
    readonly weightDecay: number;
    readonly step: number;
    readonly decay: readonly string[];
    readonly noDecay: readonly string[];
  };
  readonly maxGradNorm: number | null;
  /** Per-step generators: step k draws from `Rng(mix(seed, k))`, so the seed is the whole state. */
  readonly rng: { readonly algorithm: 'mulberry32-per-step'; readonly seed: number };
  readonly data: DataState;
  readonly trainable: readonly string[];
  /** Stage-specific settings (stage 1: text options, temperature clamp; stage 2: LM kind). */
  readonly settings: Readonly<Record<string, unknown>>;
  /** Loss of the last step, for information. */
  readonly lastLoss: number | null;
}

/** A trainer's whole state on the host: JSON, optimizer moments and every parameter of its store. */
export interface TrainerSnapshot {
  readonly json: TrainerStateJson;
  readonly optimizer: AdamWState;
  /** Canonical name -> float32 value, trainable and frozen. */
  readonly params: ReadonlyMap<string, HostTensor>;
}
