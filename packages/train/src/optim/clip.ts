import { type Backend, type ParamStore, requireTraining } from '@qf/core';
import { checkNumber } from '../errors.js';

/**
 * Gradient clipping by global norm, as PyTorch's `clip_grad_norm_(params, maxNorm)` (L2, no error on
 * non-finite norms): `total = sqrt(sum over tensors of sum(g^2))`, then every gradient is multiplied
 * by `min(maxNorm / (total + 1e-6), 1)`. Runs on the device in one `assignParams` call (the grads are
 * rewritten in place); only the norm is read back.
 * @param grads a store of `backend` (e.g. `valueAndGrad`'s grads)
 * @param names the gradients to clip together (default: all of `grads`)
 * @returns the total norm before clipping
 */
export async function clipGradNorm<T>(
  backend: Backend<T>,
  grads: ParamStore<T>,
  maxNorm: number,
  names: readonly string[] = grads.names(),
): Promise<number> {
  checkNumber('maxGradNorm', maxNorm, 0);
  const training = requireTraining(backend);
  const stats = training.createParams(
    new Map([['grad_norm', { dtype: 'F32' as const, shape: [], data: new Float32Array(1) }]]),
  );
  try {
    await training.assignParams((ops) => {
      let sumSq: T | undefined;
      for (const name of names) {
        const g = grads.get(name);
        const s = ops.sum(ops.reshape(ops.mul(g, g), [-1]), 0);
        sumSq = sumSq === undefined ? s : ops.add(sumSq, s);
      }
      const total = ops.sqrt(sumSq ?? ops.scalar(0));
      const coef = ops.minimum(ops.div(ops.scalar(maxNorm), ops.add(total, ops.scalar(1e-6))), ops.scalar(1));
      return [
        { store: stats, name: 'grad_norm', value: total },
        ...names.map((name) => ({ store: grads, name, value: ops.mul(grads.get(name), coef) })),
      ];
    });
    const host = await training.readParams(stats);
    return (host.get('grad_norm')?.data as Float32Array)[0] as number;
  } finally {
    training.disposeParams(stats);
  }
}

/**
 * The global L2 norm of the gradients (no clipping), as {@link clipGradNorm} computes it.
 */
export async function gradNorm<T>(
  backend: Backend<T>,
  grads: ParamStore<T>,
  names: readonly string[] = grads.names(),
): Promise<number> {
  return clipGradNorm(backend, grads, Number.MAX_VALUE, names);
}
