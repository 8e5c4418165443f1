import type { Backend, ParamStore, Rng, TrainingBackend } from '@qf/core';
import { requireTraining } from '@qf/core';
import type { HostTensor } from '@qf/io';
import { TrainError, checkInt, checkNumber } from '../errors.js';
import { AdamW, type AdamWOptions } from '../optim/adamw.js';
import { clipGradNorm } from '../optim/clip.js';
import { type Schedule, scheduleFromSpec } from '../optim/schedule.js';
import { BatchReader, stepRng } from './data.js';
import type {
  DataSource,
  StepMetrics,
  TrainReporter,
  TrainSummary,
  TrainerSnapshot,
  TrainerStateJson,
} from './types.js';

/** Options every trainer takes. */
export interface TrainerOptions<T, B> {
  /** The parameters (a store of the backend): trainable ones are updated in place, others never. */
  readonly params: ParamStore<T>;
  readonly data: DataSource<B>;
  /** Steps of the whole run (the schedule's horizon; `train()` stops there). */
  readonly totalSteps: number;
  readonly schedule: Schedule;
  /** AdamW settings (the learning rate comes from the schedule). Default: PyTorch's, weight decay 0.05. */
  readonly adamw?: Omit<AdamWOptions, 'lr'>;
  /** Clip gradients to this global L2 norm (off by default, as in LAVIS). */
  readonly maxGradNorm?: number;
  /** Seed of the per-step generators (hard negatives...). Default 0. */
  readonly seed?: number;
  readonly reporters?: readonly TrainReporter[];
  /** Runs every `every` steps and after the last; its numbers go to the reporters as an `eval` record. */
  readonly evaluate?: {
    readonly every: number;
    readonly run: (step: number) => Promise<Readonly<Record<string, number>>>;
  };
  /** Called every `every` steps and after the last (e.g. `checkpointer(...)` of `@qf/train/node`). */
  readonly checkpoint?: {
    readonly every: number;
    readonly save: (trainer: Trainer<T, B>) => Promise<string | undefined>;
  };
}

/** One step's loss, parts and gradients, from a concrete trainer. */
export interface StepGrads<T> {
  readonly loss: number;
  readonly parts: Record<string, number>;
  readonly grads: ParamStore<T>;
}

const now = (): number => globalThis.performance?.now() ?? Date.now();

/**
 * The training loop shared by the stage-1 and stage-2 trainers: batch, lr from the schedule, loss and
 * gradients (subclass), optional clipping, one on-device AdamW step, the subclass's post-step hook,
 * metrics, and the periodic evaluation and checkpoint hooks.
 */
export abstract class Trainer<T, B> {
  abstract readonly stage: string;
  readonly backend: TrainingBackend<T>;
  readonly params: ParamStore<T>;
  readonly trainable: readonly string[];
  readonly optimizer: AdamW<T>;
  protected readonly options: TrainerOptions<T, B>;
  private readonly reader: BatchReader<B>;
  private scheduleNow: Schedule;
  private total: number;
  private seed: number;
  private maxNorm: number | undefined;
  private done = 0;
  private lastLoss: number | undefined;

  constructor(backend: Backend<T>, trainable: readonly string[], options: TrainerOptions<T, B>) {
    this.backend = requireTraining(backend);
    this.params = options.params;
    this.options = options;
    this.trainable = [...trainable];
    this.total = checkInt('totalSteps', options.totalSteps, 1);
    this.seed = checkInt('seed', options.seed ?? 0, 0);
    if (options.maxGradNorm !== undefined) checkNumber('maxGradNorm', options.maxGradNorm, 0);
    this.maxNorm = options.maxGradNorm;
    this.scheduleNow = options.schedule;
    this.optimizer = new AdamW(backend, options.params, this.trainable, {
      ...options.adamw,
      lr: options.schedule.lr(0),
    });
    this.reader = new BatchReader(options.data);
  }

  /** Steps completed. */
  get step(): number {
    return this.done;
  }

  get totalSteps(): number {
    return this.total;
  }

  get schedule(): Schedule {
    return this.scheduleNow;
  }

  /** Loss and gradients of one batch; the grads are a store of the backend owned by the caller. */
  protected abstract computeGrads(batch: B, rng: Rng): Promise<StepGrads<T>>;
  /** After the optimizer step (e.g. clamp the temperature); returns scalars to report. */
  protected async afterStep(): Promise<Record<string, number> | undefined> {
    return undefined;
  }
  /** Stage-specific settings saved with the state and checked on restore. */
  protected abstract settings(): Record<string, unknown>;

  /**
   * Takes one optimizer step.
   * @throws TrainError `TRAIN_NONFINITE` (before any update) when the loss is NaN or infinite;
   *   `TRAIN_DATA` when the data ends; `TRAIN_OPTIONS` past `totalSteps`. After an error nothing has
   *   changed (data position included), except for an error of the post-step hook.
   */
  async trainStep(startedAt = now()): Promise<StepMetrics> {
    if (this.done >= this.total)
      throw new TrainError('TRAIN_OPTIONS', `all ${this.total} steps are done (totalSteps)`);
    const t0 = now();
    const index = this.done;
    const lr = this.scheduleNow.lr(index);
    let r: StepGrads<T> | undefined;
    let gradNorm: number | undefined;
    try {
      const batch = await this.reader.next();
      r = await this.computeGrads(batch, stepRng(this.seed, index));
      if (!Number.isFinite(r.loss))
        throw new TrainError(
          'TRAIN_NONFINITE',
          `loss is ${r.loss} at step ${index + 1}; parameters not updated`,
        );
      if (this.maxNorm !== undefined)
        gradNorm = await clipGradNorm(this.backend, r.grads, this.maxNorm, this.trainable);
      await this.optimizer.step(r.grads, lr); // one assignParams: all or nothing
    } catch (err) {
      this.reader.seek(index); // nothing was updated: the same batch comes next
      throw err;
    } finally {
      if (r) this.backend.disposeParams(r.grads);
    }
    const extra = await this.afterStep();
    this.done = index + 1;
    this.lastLoss = r.loss;
    const t1 = now();
    return {
      type: 'step',
      step: this.done,
      totalSteps: this.total,
      lr,
      loss: r.loss,
      parts: r.parts,
      ...(gradNorm !== undefined ? { gradNorm } : {}),
      ...(extra ? { extra } : {}),
      stepMs: t1 - t0,
      stepsPerSec: 1000 / Math.max(t1 - t0, 1e-9),
      elapsedS: (t1 - startedAt) / 1000,
    };
  }

  /**
   * Trains until `totalSteps` (or `until`, a step count), reporting every step, evaluating and
   * checkpointing as configured. Resumable: after `resumeTraining` it continues where the run stopped.
   */
  async train(options: { readonly until?: number } = {}): Promise<TrainSummary> {
    const until = Math.min(options.until ?? this.total, this.total);
    const reporters = this.options.reporters ?? [];
    const start = now();
    const first = this.done;
    for (const r of reporters) r.start?.({ stage: this.stage, startStep: first, totalSteps: this.total });
    while (this.done < until) {
      const m = await this.trainStep(start);
      for (const r of reporters) r.step?.(m);
      const last = this.done === this.total;
      const ev = this.options.evaluate;
      if (ev && (this.done % ev.every === 0 || last)) {
        const metrics = await ev.run(this.done);
        for (const r of reporters) r.eval?.({ type: 'eval', step: this.done, metrics });
      }
      const ck = this.options.checkpoint;
      if (ck && (this.done % ck.every === 0 || last)) {
        const dir = await ck.save(this);
        if (dir !== undefined) for (const r of reporters) r.checkpoint?.({ step: this.done, dir });
      }
    }
    const elapsedS = (now() - start) / 1000;
    const stepsRun = this.done - first;
    const summary: TrainSummary = {
      stage: this.stage,
      step: this.done,
      stepsRun,
      lastLoss: this.lastLoss,
      stepsPerSec: stepsRun > 0 ? stepsRun / elapsedS : 0,
      elapsedS,
    };
    for (const r of reporters) await r.end?.(summary);
    return summary;
  }

  /** The JSON half of the state (`trainer_state.json`). */
  async stateJson(): Promise<TrainerStateJson> {
    const groups = await this.optimizer.groups();
    return {
      format: 'qf-trainer-state',
      version: 1,
      stage: this.stage,
      step: this.done,
      totalSteps: this.total,
      schedule: this.scheduleNow.spec,
      optimizer: {
        name: 'adamw',
        betas: this.optimizer.betas,
        eps: this.optimizer.eps,
        weightDecay: this.optimizer.weightDecay,
        step: this.optimizer.stepCount,
        decay: groups.decay,
        noDecay: groups.noDecay,
      },
      maxGradNorm: this.maxNorm ?? null,
      rng: { algorithm: 'mulberry32-per-step', seed: this.seed },
      data: this.reader.state,
      trainable: this.trainable,
      settings: this.settings(),
      lastLoss: this.lastLoss ?? null,
    };
  }

  /** Everything needed to continue exactly: state JSON, optimizer moments, all parameters. */
  async snapshot(): Promise<TrainerSnapshot> {
    return {
      json: await this.stateJson(),
      optimizer: await this.optimizer.stateDict(),
      params: await this.backend.readParams(this.params),
    };
  }

  /**
   * Restores a {@link snapshot}: trainable parameters, moments, step, schedule, seed, clipping and
   * data position. Frozen parameters found in the snapshot must equal the store's bit for bit.
   * @throws TrainError `TRAIN_STATE` when the snapshot is from another stage, trainable set, optimizer
   *   setting or frozen model
   */
  async restore(snapshot: TrainerSnapshot): Promise<void> {
    const s = snapshot.json;
    const mine = await this.stateJson();
    const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
    const checks: [string, unknown, unknown][] = [
      ['stage', s.stage, mine.stage],
      ['trainable parameters', s.trainable, mine.trainable],
      ['AdamW betas', s.optimizer.betas, mine.optimizer.betas],
      ['AdamW eps', s.optimizer.eps, mine.optimizer.eps],
      ['AdamW weight decay', s.optimizer.weightDecay, mine.optimizer.weightDecay],
      ['AdamW decayed parameters', s.optimizer.decay, mine.optimizer.decay],
      ['stage settings', s.settings, mine.settings],
    ];
    for (const [what, saved, now] of checks)
      if (!same(saved, now))
        throw new TrainError(
          'TRAIN_STATE',
          `checkpoint differs from this trainer in ${what}: saved ${JSON.stringify(saved)}, here ${JSON.stringify(now)}`,
        );
    await this.checkFrozen(snapshot.params);
    const schedule = scheduleFromSpec(s.schedule);
    for (const n of this.trainable) required(snapshot.params, n);
    await this.optimizer.loadStateDict(snapshot.optimizer); // validates before it replaces anything
    const incoming = this.backend.createParams(
      new Map(this.trainable.map((n) => [n, required(snapshot.params, n)] as const)),
    );
    try {
      await this.backend.assignParams(() =>
        this.trainable.map((name) => ({ store: this.params, name, value: incoming.get(name) })),
      );
    } finally {
      this.backend.disposeParams(incoming);
    }
    this.scheduleNow = schedule;
    this.total = s.totalSteps;
    this.seed = s.rng.seed;
    this.maxNorm = s.maxGradNorm ?? undefined;
    this.done = s.step;
    this.lastLoss = s.lastLoss ?? undefined;
    this.reader.seek(s.data.consumed);
  }

  /** Frees the optimizer state and closes the data source (the parameters are the caller's). */
  dispose(): void {
    this.optimizer.dispose();
    this.reader.close();
  }

  private async checkFrozen(saved: ReadonlyMap<string, HostTensor>): Promise<void> {
    const trainable = new Set(this.trainable);
    const frozen = this.params.names().filter((n) => !trainable.has(n) && saved.has(n));
    if (frozen.length === 0) return;
    const current = await this.backend.readParams(this.params, frozen);
    for (const name of frozen)
      if (!sameBytes(current.get(name) as HostTensor, saved.get(name) as HostTensor))
        throw new TrainError(
          'TRAIN_STATE',
          `frozen parameter "${name}" differs from the checkpoint's (resume with the same frozen model)`,
        );
  }
}

function required(map: ReadonlyMap<string, HostTensor>, name: string): HostTensor {
  const t = map.get(name);
  if (!t) throw new TrainError('TRAIN_STATE', `checkpoint has no value for trainable parameter "${name}"`);
  return t;
}

/** Same dtype, shape and bytes. */
export function sameBytes(a: HostTensor, b: HostTensor): boolean {
  if (a.dtype !== b.dtype || a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i]))
    return false;
  const x = new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength);
  const y = new Uint8Array(b.data.buffer, b.data.byteOffset, b.data.byteLength);
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}
