import { type HostTensor, QfError } from '@qf/io';
import type { Ops } from './ops.js';
import type { ParamStore } from './params.js';

/**
 * A function of (ops, named inputs) -> named outputs: the unit a backend executes. Model code builds
 * these from the plain forward functions; parameters are captured from a {@link ParamStore} made by
 * the same backend.
 */
export type GraphFn<T, K extends string = string> = (ops: Ops<T>, inputs: Record<string, T>) => Record<K, T>;

/**
 * A loss for {@link Backend.valueAndGrad}: (ops, params, named inputs) -> named outputs, of which
 * `loss` is the float32 scalar to differentiate. The parameters arrive as an argument (not captured)
 * so that a backend can differentiate with respect to them; other outputs (loss parts, logits) are
 * read back to the host with the loss.
 */
export type LossFn<T, K extends string = never> = (
  ops: Ops<T>,
  params: ParamStore<T>,
  inputs: Record<string, T>,
) => { readonly loss: T } & Partial<Record<K, T>>;

/** What {@link Backend.valueAndGrad} returns. */
export interface GradResult<T, K extends string = never> {
  /** The value of `loss`. */
  readonly loss: number;
  /** Every output of the loss function (`loss` included), on the host. */
  readonly outputs: { readonly loss: HostTensor } & Partial<Record<K, HostTensor>>;
  /**
   * d loss / d param for every trainable name, as tensors of this backend (same shapes as the
   * parameters; zeros for a parameter the loss does not use). The caller owns them: pass them to an
   * on-device optimizer ({@link Backend.assignParams}), read them with {@link Backend.readParams},
   * and free them with `disposeParams`.
   */
  readonly grads: ParamStore<T>;
}

/** One in-place update for {@link Backend.assignParams}: `store.get(name)` becomes `value`. */
export interface ParamAssignment<T> {
  /** A store made by this backend (`createParams` or the `grads` of `valueAndGrad`). */
  readonly store: ParamStore<T>;
  readonly name: string;
  /** The new value (same shape), computed with the `ops` handed to the assignment function. */
  readonly value: T;
}

/**
 * What the host side of a backend provides. The tfjs backend answers `run` by calling `fn` eagerly
 * inside a memory scope; a graph backend traces `fn` once per `key` and input signature and runs the
 * recorded graph. Model classes use only this interface, so they work on every backend.
 *
 * Training is optional ({@link valueAndGrad}, {@link readParams}, {@link assignParams}): the tfjs
 * backend implements it with tfjs autodiff; the ONNX backend does not (use {@link requireTraining}
 * for a typed error instead of a missing method).
 */
export interface Backend<T> {
  /** e.g. `tfjs-cpu`, `tfjs-wasm`. */
  readonly name: string;
  /** The op interface, for callers that compute eagerly (tests, training). */
  readonly ops: Ops<T>;
  /** Turn host tensors (F32/F16/BF16 -> float32) into parameters owned by the backend. */
  createParams(tensors: ReadonlyMap<string, HostTensor>): ParamStore<T>;
  /** Free parameters made by {@link createParams}. */
  disposeParams(params: ParamStore<T>): void;
  /**
   * Run `fn` on host inputs (float dtypes -> float32, integer dtypes -> int32) and return host
   * outputs (F32 or I32). Every intermediate tensor is freed before the promise settles.
   */
  run<K extends string>(
    key: string,
    fn: GraphFn<T, K>,
    inputs: Record<string, HostTensor>,
  ): Promise<Record<K, HostTensor>>;

  /**
   * The loss and its gradients with respect to the `trainable` parameters, in one call: `fn` runs
   * on `params` and the host `inputs` (converted as in {@link run}); the gradients stay on the
   * backend (see {@link GradResult.grads}), so an optimizer step can run there without a host round
   * trip. Every intermediate tensor is freed before the promise settles.
   * @throws TensorError `TENSOR_MISSING` for a trainable name the store lacks; QfError
   *   `BACKEND_LOSS` when `loss` is missing or not a float scalar.
   */
  valueAndGrad?<K extends string = never>(
    fn: LossFn<T, K>,
    params: ParamStore<T>,
    trainable: readonly string[],
    inputs: Record<string, HostTensor>,
  ): Promise<GradResult<T, K>>;

  /** Host copies (F32) of the named tensors of a store (default: all of them). */
  readParams?(store: ParamStore<T>, names?: readonly string[]): Promise<Map<string, HostTensor>>;

  /**
   * Computes new values with `fn` (eagerly, in a memory scope) and writes them into their stores in
   * place: after the call `store.get(name)` returns the new value and the old one is freed. Every
   * value is computed before any is written, so an update may read the old values of all stores
   * (e.g. AdamW: moments, then parameters, in one call).
   * @throws QfError `BACKEND_ASSIGN` for a store this backend did not make, an unknown name or a
   *   shape change.
   */
  assignParams?(fn: (ops: Ops<T>) => readonly ParamAssignment<T>[]): Promise<void>;
}

/**
 * A backend lacks an optional capability (e.g. training on the ONNX backend). Code
 * `BACKEND_UNSUPPORTED`; `operation` names the missing method.
 */
export class BackendUnsupportedError extends QfError {
  readonly backend: string;
  readonly operation: string;
  constructor(backend: string, operation: string, hint: string) {
    super('BACKEND_UNSUPPORTED', `backend "${backend}" does not support ${operation}: ${hint}`);
    this.backend = backend;
    this.operation = operation;
  }
}

/** A backend with the training methods present. */
export type TrainingBackend<T> = Backend<T> &
  Required<Pick<Backend<T>, 'valueAndGrad' | 'readParams' | 'assignParams'>>;

/**
 * `backend` as a {@link TrainingBackend}, or a {@link BackendUnsupportedError} saying that training
 * needs a backend with autodiff (today: `@qf/backends/tfjs`).
 */
export function requireTraining<T>(backend: Backend<T>): TrainingBackend<T> {
  for (const op of ['valueAndGrad', 'readParams', 'assignParams'] as const) {
    if (typeof backend[op] !== 'function')
      throw new BackendUnsupportedError(
        backend.name,
        op,
        'training needs the tfjs backend (@qf/backends/tfjs), whose autodiff computes gradients',
      );
  }
  return backend as TrainingBackend<T>;
}
