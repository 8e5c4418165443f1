import { TensorError } from '@qf/io';

/**
 * Named model parameters, keyed by canonical (HF) names such as
 * `qformer.encoder.layer.3.crossattention.attention.key.weight`.
 */
export interface ParamStore<T> {
  /** The parameter called `name`; throws a TensorError naming it when absent. */
  get(name: string): T;
  has(name: string): boolean;
  names(): string[];
}

/** A ParamStore over a plain Map. */
export function paramStore<T>(entries: Map<string, T> | Record<string, T>): ParamStore<T> {
  const map = entries instanceof Map ? entries : new Map(Object.entries(entries));
  return {
    get(name) {
      const t = map.get(name);
      if (t === undefined) throw new TensorError('TENSOR_MISSING', name, 'parameter is not loaded');
      return t;
    },
    has: (name) => map.has(name),
    names: () => [...map.keys()],
  };
}

/** A ParamStore that reads `prefix + name` from another store (e.g. one layer's parameters). */
export function scoped<T>(params: ParamStore<T>, prefix: string): ParamStore<T> {
  return {
    get: (name) => params.get(prefix + name),
    has: (name) => params.has(prefix + name),
    names: () =>
      params
        .names()
        .filter((n) => n.startsWith(prefix))
        .map((n) => n.slice(prefix.length)),
  };
}
