import type { HostTensor } from '@qf/io';
import type { Ops } from './ops.js';
import type { ParamStore } from './params.js';

/**
 * A function of (ops, named inputs) -> named outputs: the unit a backend executes. Model code builds
 * these from the plain forward functions; parameters are captured from a {@link ParamStore} made by
 * the same backend.
 */
export type GraphFn<T, K extends string = string> = (ops: Ops<T>, inputs: Record<string, T>) => Record<K, T>;

/**
 * What the host side of a backend provides. The tfjs backend answers `run` by calling `fn` eagerly
 * inside a memory scope; a graph backend traces `fn` once per `key` and input signature and runs the
 * recorded graph. Model classes use only this interface, so they work on every backend.
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
}
