import { TrainError, checkInt, checkNumber } from '../errors.js';

/**
 * Learning-rate schedules as pure functions of the 0-based optimizer step (the step about to be
 * taken), described by a JSON-serializable {@link ScheduleSpec} so a checkpoint can store and rebuild
 * them ({@link scheduleFromSpec}).
 */

/** LAVIS's `LinearWarmupCosineLRScheduler` (`lavis/common/optims.py`), per epoch. */
export interface LavisWarmupCosineSpec {
  readonly kind: 'lavis-warmup-cosine';
  /** `init_lr`: the peak. */
  readonly initLr: number;
  /** `min_lr`: the value the cosine reaches at `maxEpoch`. */
  readonly minLr: number;
  /** `warmup_steps` (iterations of epoch 0). */
  readonly warmupSteps: number;
  /** `warmup_lr` / `warmup_start_lr` (LAVIS's -1 default means `initLr`). */
  readonly warmupStartLr: number;
  /** `max_epoch`. */
  readonly maxEpoch: number;
  /** Iterations per (inner) epoch. */
  readonly stepsPerEpoch: number;
}

/** The same warm-up, then a cosine over steps instead of epochs. */
export interface WarmupCosineSpec {
  readonly kind: 'warmup-cosine';
  readonly initLr: number;
  readonly minLr: number;
  readonly warmupSteps: number;
  readonly warmupStartLr: number;
  /** The step at which the cosine reaches `minLr`. */
  readonly totalSteps: number;
}

/** A constant learning rate. */
export interface ConstantSpec {
  readonly kind: 'constant';
  readonly lr: number;
}

export type ScheduleSpec = LavisWarmupCosineSpec | WarmupCosineSpec | ConstantSpec;

/** A learning-rate schedule: `lr(step)` for the 0-based step about to be taken. */
export interface Schedule {
  readonly spec: ScheduleSpec;
  lr(step: number): number;
}

/** LAVIS `warmup_lr_schedule`: `min(maxLr, startLr + (maxLr - startLr) * step / max(maxStep, 1))`. */
export function warmupLr(step: number, maxStep: number, startLr: number, maxLr: number): number {
  return Math.min(maxLr, startLr + ((maxLr - startLr) * step) / Math.max(maxStep, 1));
}

/** LAVIS `cosine_lr_schedule`: `(initLr - minLr) * 0.5 * (1 + cos(pi * t / tMax)) + minLr`. */
export function cosineLr(t: number, tMax: number, initLr: number, minLr: number): number {
  return (initLr - minLr) * 0.5 * (1 + Math.cos((Math.PI * t) / tMax)) + minLr;
}

/** Options shared by the warm-up + cosine schedules. */
export interface WarmupCosineOptions {
  readonly initLr: number;
  /** Default 0. */
  readonly minLr?: number;
  /** Default 0 (no warm-up). */
  readonly warmupSteps?: number;
  /** Default `initLr` (LAVIS's `warmup_lr: -1`). */
  readonly warmupStartLr?: number;
}

/**
 * LAVIS's `LinearWarmupCosineLRScheduler` exactly, as its training loop drives it (`step(cur_epoch,
 * cur_step)` before every iteration): with `epoch = floor(step / stepsPerEpoch)` and
 * `i = step % stepsPerEpoch`, epoch 0 uses `warmupLr(i, warmupSteps, warmupStartLr, initLr)` (so it
 * stays at `initLr` once warmed up), every later epoch `cosineLr(epoch, maxEpoch, initLr, minLr)`
 * (constant within the epoch).
 */
export function lavisWarmupCosine(
  options: WarmupCosineOptions & { readonly maxEpoch: number; readonly stepsPerEpoch: number },
): Schedule {
  return scheduleFromSpec({
    kind: 'lavis-warmup-cosine',
    initLr: options.initLr,
    minLr: options.minLr ?? 0,
    warmupSteps: options.warmupSteps ?? 0,
    warmupStartLr: options.warmupStartLr ?? options.initLr,
    maxEpoch: options.maxEpoch,
    stepsPerEpoch: options.stepsPerEpoch,
  });
}

/**
 * Step-granular warm-up + cosine: LAVIS's warm-up formula for `step < warmupSteps`, then
 * `cosineLr(step - warmupSteps, totalSteps - warmupSteps, initLr, minLr)` (`initLr` at the end of
 * the warm-up, `minLr` at `totalSteps`). For short runs where one epoch is the whole run.
 */
export function warmupCosine(options: WarmupCosineOptions & { readonly totalSteps: number }): Schedule {
  return scheduleFromSpec({
    kind: 'warmup-cosine',
    initLr: options.initLr,
    minLr: options.minLr ?? 0,
    warmupSteps: options.warmupSteps ?? 0,
    warmupStartLr: options.warmupStartLr ?? options.initLr,
    totalSteps: options.totalSteps,
  });
}

/** A constant learning rate. */
export function constantLr(lr: number): Schedule {
  return scheduleFromSpec({ kind: 'constant', lr });
}

/**
 * Rebuilds a schedule from its spec (e.g. read from a checkpoint's `trainer_state.json`).
 * @throws TrainError `TRAIN_OPTIONS` for an unknown kind or an out-of-range field
 */
export function scheduleFromSpec(spec: ScheduleSpec): Schedule {
  const lrOf = build(spec);
  return {
    spec: Object.freeze({ ...spec }),
    lr(step: number): number {
      checkInt('schedule step', step, 0);
      return lrOf(step);
    },
  };
}

function build(spec: ScheduleSpec): (step: number) => number {
  switch (spec?.kind) {
    case 'constant': {
      const lr = checkNumber('lr', spec.lr, 0);
      return () => lr;
    }
    case 'lavis-warmup-cosine': {
      const s = checkWarmup(spec);
      const maxEpoch = checkInt('maxEpoch', spec.maxEpoch, 1);
      const perEpoch = checkInt('stepsPerEpoch', spec.stepsPerEpoch, 1);
      return (step) => {
        const epoch = Math.floor(step / perEpoch);
        if (epoch === 0) return warmupLr(step % perEpoch, s.warmupSteps, s.warmupStartLr, s.initLr);
        return cosineLr(epoch, maxEpoch, s.initLr, s.minLr);
      };
    }
    case 'warmup-cosine': {
      const s = checkWarmup(spec);
      const total = checkInt('totalSteps', spec.totalSteps, 1);
      if (s.warmupSteps >= total)
        throw new TrainError(
          'TRAIN_OPTIONS',
          `warmupSteps (${s.warmupSteps}) must be below totalSteps (${total})`,
        );
      return (step) =>
        step < s.warmupSteps
          ? warmupLr(step, s.warmupSteps, s.warmupStartLr, s.initLr)
          : cosineLr(Math.min(step, total) - s.warmupSteps, total - s.warmupSteps, s.initLr, s.minLr);
    }
    default:
      throw new TrainError(
        'TRAIN_OPTIONS',
        `unknown schedule kind ${JSON.stringify((spec as { kind?: unknown })?.kind)} (known: constant, lavis-warmup-cosine, warmup-cosine)`,
      );
  }
}

function checkWarmup(spec: LavisWarmupCosineSpec | WarmupCosineSpec): {
  initLr: number;
  minLr: number;
  warmupSteps: number;
  warmupStartLr: number;
} {
  return {
    initLr: checkNumber('initLr', spec.initLr, 0),
    minLr: checkNumber('minLr', spec.minLr, 0),
    warmupSteps: checkInt('warmupSteps', spec.warmupSteps, 0),
    warmupStartLr: checkNumber('warmupStartLr', spec.warmupStartLr, 0),
  };
}
