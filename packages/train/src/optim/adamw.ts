import { type Backend, type ParamStore, type TrainingBackend, requireTraining } from '@qf/core';
import { type HostTensor, fmtShape, numel } from '@qf/io';
import { TrainError, checkNumber } from '../errors.js';

/** Says whether a parameter gets weight decay, from its name and shape. */
export type DecayRule = (name: string, shape: readonly number[]) => boolean;

/**
 * LAVIS's split (`BaseModel.get_optimizer_params` / `RunnerBase.optimizer`): no weight decay for
 * `p.ndim < 2 or "bias" in n or "ln" in n or "bn" in n` (biases, norm weights, `temp`), decay for
 * everything else (linear weights, embeddings, query tokens). Applied to canonical (HF) names; for
 * BLIP-2's parameters it picks the same tensors as LAVIS's names do (norms are 1-d either way).
 */
export const lavisDecay: DecayRule = (name, shape) =>
  !(shape.length < 2 || name.includes('bias') || name.includes('ln') || name.includes('bn'));

/** Options of {@link AdamW} (PyTorch `torch.optim.AdamW` names, camelCase). */
export interface AdamWOptions {
  /** The learning rate used when `step` is given none. */
  readonly lr: number;
  /** Default [0.9, 0.999]. */
  readonly betas?: readonly [number, number];
  /** Default 1e-8. */
  readonly eps?: number;
  /** Decoupled weight decay of the decayed group (default 0.05, LAVIS's BLIP-2 setting). */
  readonly weightDecay?: number;
  /** Which parameters decay (default {@link lavisDecay}). */
  readonly decay?: DecayRule;
}

/** Host copy of the optimizer state (PyTorch's `state_dict()["state"]`, by parameter name). */
export interface AdamWState {
  /** Steps taken (PyTorch's per-parameter `step`; the same for every parameter here). */
  readonly step: number;
  /** First moments (`exp_avg`), float32, by parameter name. */
  readonly expAvg: ReadonlyMap<string, HostTensor>;
  /** Second moments (`exp_avg_sq`), float32, by parameter name. */
  readonly expAvgSq: ReadonlyMap<string, HostTensor>;
}

/**
 * AdamW on the device, with PyTorch's semantics (`torch.optim.AdamW`, `amsgrad=False`,
 * `maximize=False`), one `backend.assignParams` call per step:
 * ```
 * p  <- p * (1 - lr * wd)                      (decayed group only; decoupled, before the Adam update)
 * m  <- m + (1 - b1) * (g - m)                 (exp_avg.lerp_(grad, 1 - beta1))
 * v  <- b2 * v + (1 - b2) * g * g
 * p  <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * ```
 * with `t` the 1-based step count. Moments live on the backend next to the parameters; they are
 * created (zeros) on the first `step`, `stateDict` or `loadStateDict`, which read the trainable
 * parameters' shapes once.
 */
export class AdamW<T> {
  readonly trainable: readonly string[];
  readonly lr: number;
  readonly betas: readonly [number, number];
  readonly eps: number;
  readonly weightDecay: number;
  private readonly training: TrainingBackend<T>;
  private readonly rule: DecayRule;
  private steps = 0;
  private moments: { m: ParamStore<T>; v: ParamStore<T>; decayed: Set<string> } | undefined;
  private init: Promise<void> | undefined;
  private disposed = false;

  /**
   * @param params a store made by `backend` holding every `trainable` name (it may hold frozen
   *   parameters too; only the trainable ones are read or written)
   * @throws BackendUnsupportedError on a backend without training; TrainError `TRAIN_OPTIONS` for an
   *   out-of-range option or an empty / duplicated trainable list
   */
  constructor(
    backend: Backend<T>,
    readonly params: ParamStore<T>,
    trainable: readonly string[],
    options: AdamWOptions,
  ) {
    this.training = requireTraining(backend);
    if (trainable.length === 0) throw new TrainError('TRAIN_OPTIONS', 'AdamW: no trainable parameters');
    if (new Set(trainable).size !== trainable.length)
      throw new TrainError('TRAIN_OPTIONS', 'AdamW: a trainable name is listed twice');
    for (const name of trainable) params.get(name); // TensorError TENSOR_MISSING names it
    this.trainable = [...trainable];
    this.lr = checkNumber('AdamW lr', options.lr, 0);
    const [b1, b2] = options.betas ?? [0.9, 0.999];
    this.betas = [checkNumber('AdamW beta1', b1, 0, 1 - 1e-12), checkNumber('AdamW beta2', b2, 0, 1 - 1e-12)];
    this.eps = checkNumber('AdamW eps', options.eps ?? 1e-8, 0);
    this.weightDecay = checkNumber('AdamW weightDecay', options.weightDecay ?? 0.05, 0);
    this.rule = options.decay ?? lavisDecay;
  }

  /** Steps taken so far. */
  get stepCount(): number {
    return this.steps;
  }

  /** The trainable names with and without weight decay (reads the parameter shapes on first use). */
  async groups(): Promise<{ decay: string[]; noDecay: string[] }> {
    const { decayed } = await this.state();
    return {
      decay: this.trainable.filter((n) => decayed.has(n)),
      noDecay: this.trainable.filter((n) => !decayed.has(n)),
    };
  }

  /**
   * One AdamW update of every trainable parameter from `grads` (a store of this backend, e.g. the
   * `grads` of `valueAndGrad`; the caller still owns and frees it).
   * @param lr this step's learning rate (a schedule's value); default the constructor's `lr`
   * @throws TensorError `TENSOR_MISSING` for a trainable name `grads` lacks
   */
  async step(grads: ParamStore<T>, lr: number = this.lr): Promise<void> {
    checkNumber('AdamW step lr', lr, 0);
    for (const name of this.trainable) grads.get(name);
    const { m, v, decayed } = await this.state();
    const t = this.steps + 1;
    const [b1, b2] = this.betas;
    const stepSize = lr / (1 - b1 ** t);
    const bc2Sqrt = Math.sqrt(1 - b2 ** t);
    const decayFactor = 1 - lr * this.weightDecay;
    const params = this.params;
    await this.training.assignParams((ops) => {
      const oneMinusB1 = ops.scalar(1 - b1);
      const beta2 = ops.scalar(b2);
      const oneMinusB2 = ops.scalar(1 - b2);
      const bc2 = ops.scalar(bc2Sqrt);
      const eps = ops.scalar(this.eps);
      const size = ops.scalar(stepSize);
      const keep = ops.scalar(decayFactor);
      return this.trainable.flatMap((name) => {
        const g = grads.get(name);
        const m0 = m.get(name);
        const p0 = params.get(name);
        const p = decayed.has(name) && this.weightDecay !== 0 ? ops.mul(p0, keep) : p0;
        const m1 = ops.add(m0, ops.mul(ops.sub(g, m0), oneMinusB1));
        const v1 = ops.add(ops.mul(v.get(name), beta2), ops.mul(ops.mul(g, g), oneMinusB2));
        const denom = ops.add(ops.div(ops.sqrt(v1), bc2), eps);
        const p1 = ops.sub(p, ops.mul(ops.div(m1, denom), size));
        return [
          { store: m, name, value: m1 },
          { store: v, name, value: v1 },
          { store: params, name, value: p1 },
        ];
      });
    });
    this.steps = t;
  }

  /** Host copies of the moments and the step count (for checkpoints). */
  async stateDict(): Promise<AdamWState> {
    const { m, v } = await this.state();
    return {
      step: this.steps,
      expAvg: await this.training.readParams(m, this.trainable),
      expAvgSq: await this.training.readParams(v, this.trainable),
    };
  }

  /**
   * Restores moments and step count from {@link stateDict} output.
   * @throws TrainError `TRAIN_STATE` when a trainable name is missing or extra, or a shape differs
   */
  async loadStateDict(state: AdamWState): Promise<void> {
    if (!Number.isInteger(state.step) || state.step < 0)
      throw new TrainError('TRAIN_STATE', `AdamW state: step must be an integer >= 0, got ${state.step}`);
    const { m, v, decayed } = await this.state();
    const shapes = await this.shapes();
    for (const [label, moments] of [
      ['exp_avg', state.expAvg],
      ['exp_avg_sq', state.expAvgSq],
    ] as const) {
      for (const name of moments.keys())
        if (!shapes.has(name))
          throw new TrainError('TRAIN_STATE', `AdamW state: ${label} of "${name}", which is not trainable`);
      for (const [name, shape] of shapes) {
        const t = moments.get(name);
        if (!t) throw new TrainError('TRAIN_STATE', `AdamW state: no ${label} for "${name}"`);
        if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))
          throw new TrainError(
            'TRAIN_STATE',
            `AdamW state: ${label} of "${name}" is ${fmtShape(t.shape)}, the parameter ${fmtShape(shape)}`,
          );
      }
    }
    // Fresh stores from the host copies replace the current moments.
    const pick = (moments: ReadonlyMap<string, HostTensor>) =>
      new Map(this.trainable.map((n) => [n, moments.get(n) as HostTensor]));
    const next = this.training.createParams(pick(state.expAvg));
    const nextSq = this.training.createParams(pick(state.expAvgSq));
    this.training.disposeParams(m);
    this.training.disposeParams(v);
    this.moments = { m: next, v: nextSq, decayed };
    this.steps = state.step;
  }

  /** Frees the moments. The parameters are the caller's. */
  dispose(): void {
    this.disposed = true;
    if (this.moments) {
      this.training.disposeParams(this.moments.m);
      this.training.disposeParams(this.moments.v);
      this.moments = undefined;
    }
  }

  private shapeCache: Map<string, readonly number[]> | undefined;

  private async shapes(): Promise<Map<string, readonly number[]>> {
    if (!this.shapeCache) {
      const host = await this.training.readParams(this.params, this.trainable);
      this.shapeCache = new Map(this.trainable.map((n) => [n, [...(host.get(n) as HostTensor).shape]]));
    }
    return this.shapeCache;
  }

  private async state(): Promise<{ m: ParamStore<T>; v: ParamStore<T>; decayed: Set<string> }> {
    if (this.disposed) throw new TrainError('TRAIN_STATE', 'AdamW: used after dispose()');
    this.init ??= (async () => {
      const shapes = await this.shapes();
      const zeros = () =>
        new Map(
          [...shapes].map(([n, s]) => [n, { dtype: 'F32', shape: [...s], data: new Float32Array(numel(s)) }]),
        ) as Map<string, HostTensor>;
      const decayed = new Set([...shapes].filter(([n, s]) => this.rule(n, s)).map(([n]) => n));
      this.moments = {
        m: this.training.createParams(zeros()),
        v: this.training.createParams(zeros()),
        decayed,
      };
    })();
    await this.init;
    if (!this.moments) throw new TrainError('TRAIN_STATE', 'AdamW: used after dispose()');
    return this.moments;
  }
}
