import type { ParamStore } from '@qf/core';
import { QfError, TensorError } from '@qf/io';
import type * as tf from '@tensorflow/tfjs-core';
import { TransposedWeights } from './transposed.js';

/**
 * The tfjs backend's parameter store: a plain name -> tensor map that the backend (and only the
 * backend) can update in place, which `assignParams` does for on-device optimizer steps.
 */
export class TfjsParamStore implements ParamStore<tf.Tensor> {
  readonly #map: Map<string, tf.Tensor>;

  constructor(map: Map<string, tf.Tensor>) {
    this.#map = map;
  }

  get(name: string): tf.Tensor {
    const t = this.#map.get(name);
    if (t === undefined) throw new TensorError('TENSOR_MISSING', name, 'parameter is not loaded');
    return t;
  }

  has(name: string): boolean {
    return this.#map.has(name);
  }

  names(): string[] {
    return [...this.#map.keys()];
  }

  /** Replaces one entry (the backend frees the old tensor). */
  replace(name: string, value: tf.Tensor): tf.Tensor {
    const old = this.#map.get(name);
    if (old === undefined)
      throw new QfError('BACKEND_ASSIGN', `assignParams: the store has no parameter "${name}"`);
    this.#map.set(name, value);
    return old;
  }
}

/**
 * The backend's transposed-weight cache with some tensors left out: a parameter being
 * differentiated must be multiplied through its own transpose, or its gradient would stop at the
 * cached copy.
 */
export class TransposedExcept extends TransposedWeights {
  constructor(
    private readonly inner: TransposedWeights,
    private readonly excluded: ReadonlySet<number>,
  ) {
    super(false);
  }

  override get(weight: tf.Tensor): tf.Tensor | undefined {
    return this.excluded.has(weight.id) ? undefined : this.inner.get(weight);
  }
}
