import * as tf from '@tensorflow/tfjs-core';

/**
 * Transposed copies of parameter weights for `linear`.
 *
 * Linear weights arrive in PyTorch layout [out, in] and are multiplied as `x @ W^T`. tfjs-wasm's
 * matMul with `transposeB` is about 15x slower than the same product with an [in, out] operand
 * (`pnpm --filter @qf/benchmarks run probe:matmul`), so the backend keeps W^T for every parameter
 * that `linear` uses, made on first use and freed with the parameters. This costs the linear
 * weights' memory a second time; turn it off with `createTfjsBackend(name, { transposedWeights: false })`.
 * Only parameters registered here are cached — never tensors computed inside a step, and never
 * trainable variables (their gradient must flow through the transpose).
 */
export class TransposedWeights {
  private readonly params = new Set<number>();
  private readonly cache = new Map<number, tf.Tensor>();

  constructor(readonly enabled: boolean) {}

  /** Marks a parameter tensor as cacheable. */
  register(t: tf.Tensor): void {
    if (this.enabled && t.rank === 2 && !(t instanceof tf.Variable)) this.params.add(t.id);
  }

  /** W^T [in, out] for a registered parameter, or undefined for any other tensor. */
  get(weight: tf.Tensor): tf.Tensor | undefined {
    if (!this.params.has(weight.id)) return undefined;
    let t = this.cache.get(weight.id);
    if (!t) {
      t = tf.keep(tf.transpose(weight)); // survives the caller's tf.tidy
      this.cache.set(weight.id, t);
    }
    return t;
  }

  /** Frees the copy of a parameter (when the parameter itself is freed). */
  release(weight: tf.Tensor): void {
    this.cache.get(weight.id)?.dispose();
    this.cache.delete(weight.id);
    this.params.delete(weight.id);
  }
}
