import type { Ops } from '@qf/core';
import * as tf from '@tensorflow/tfjs-core';
import { TransposedWeights } from './transposed.js';

/** Resolves ONNX-style reshape targets (`0` = copy input dim) against a concrete input shape. */
function resolveShape(input: readonly number[], target: readonly number[]): number[] {
  return target.map((d, i) => (d === 0 ? (input[i] as number) : d));
}

/** Positive axis index. */
function axisOf(rank: number, axis: number): number {
  return axis < 0 ? rank + axis : axis;
}

/** Exact (erf-based) GELU. */
function gelu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2)))));
}

/**
 * True when tfjs's batched-matmul kernels broadcast batch dims `x` to `out` exactly. Every tfjs
 * kernel (cpu, wasm, webgl, webgpu) flattens the batch dims and indexes the smaller operand by
 * `flatIndex % size`, which is NumPy broadcasting only when `x` is leading 1s followed by the
 * output's trailing dims (e.g. [1, heads] against [T, heads], the shared-image cross-attention).
 */
function moduloBroadcastExact(x: readonly number[], out: readonly number[]): boolean {
  const padded = [...Array<number>(out.length - x.length).fill(1), ...x];
  let k = 0;
  while (k < padded.length && padded[k] === 1) k++;
  return padded.every((d, i) => i < k || d === out[i]);
}

/**
 * `tf.matMul(a, b, transposeA, transposeB)`, except on tfjs-wasm, whose matMul with a transposed
 * operand is 10-60x slower than without (measured on [1024, 256] x [256, 1024]: plain 28 GFLOP/s,
 * `transposeB` 2.3, `transposeA` 0.4): there the transposes are materialized first, which costs a
 * copy. Training hits this in every backward matmul.
 */
export function matMulPlain(a: tf.Tensor, b: tf.Tensor, transposeA = false, transposeB = false): tf.Tensor {
  if ((!transposeA && !transposeB) || tf.getBackend() !== 'wasm')
    return tf.matMul(a, b, transposeA, transposeB);
  const swap = (x: tf.Tensor) =>
    tf.transpose(x, [...x.shape.slice(0, -2).map((_, i) => i), x.rank - 1, x.rank - 2]);
  return tf.matMul(transposeA ? swap(a) : a, transposeB ? swap(b) : b);
}

/** `a @ b` (or `a @ b^T`) with NumPy broadcasting of the batch dims on every tfjs backend. */
function matmul(a: tf.Tensor, b: tf.Tensor, transposeB: boolean): tf.Tensor {
  const batch = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const fit = (x: tf.Tensor) =>
    moduloBroadcastExact(x.shape.slice(0, -2), batch)
      ? x
      : tf.broadcastTo(x, [...batch, ...x.shape.slice(-2)]);
  return matMulPlain(fit(a), fit(b), false, transposeB);
}

/**
 * The @qf/core op interface on tfjs. Works on any registered tfjs backend (cpu, wasm, webgl,
 * webgpu, tensorflow); every op is differentiable through tfjs autodiff. `transposed` holds the
 * backend's transposed parameter weights for `linear` (see {@link TransposedWeights}).
 */
export function tfjsOps(name: string, transposed = new TransposedWeights(false)): Ops<tf.Tensor> {
  return {
    name,
    constant: (data, shape) =>
      data instanceof Int32Array
        ? tf.tensor(data, [...shape], 'int32')
        : tf.tensor(data, [...shape], 'float32'),
    scalar: (v) => tf.scalar(v, 'float32'),

    reshape: (x, shape) => tf.reshape(x, resolveShape(x.shape, shape)),
    transpose: (x, perm) => tf.transpose(x, [...perm]),
    concat: (xs, axis) => tf.concat([...xs], axis),
    slice: (x, axis, start, end) => {
      const a = axisOf(x.rank, axis);
      const begin = x.shape.map((_, i) => (i === a ? start : 0));
      const size = x.shape.map((d, i) => (i === a ? (end ?? d) - start : -1));
      return tf.slice(x, begin, size);
    },
    gather: (table, ids) => tf.gather(table, ids),
    expandBatch: (x, like) => tf.broadcastTo(x, [like.shape[0] as number, ...x.shape.slice(1)]),
    range: (like, axis) => tf.range(0, like.shape[axisOf(like.rank, axis)] as number, 1, 'int32'),

    add: (a, b) => tf.add(a, b),
    sub: (a, b) => tf.sub(a, b),
    mul: (a, b) => tf.mul(a, b),
    div: (a, b) => tf.div(a, b),
    maximum: (a, b) => tf.maximum(a, b),
    minimum: (a, b) => tf.minimum(a, b),
    sqrt: (x) => tf.sqrt(x),
    exp: (x) => tf.exp(x),
    log: (x) => tf.log(x),
    tanh: (x) => tf.tanh(x),
    relu: (x) => tf.relu(x),
    gelu,
    toFloat: (x) => (x.dtype === 'float32' ? x : tf.cast(x, 'float32')),

    sum: (x, axis, keepDims = false) => tf.sum(x, axis, keepDims),
    mean: (x, axis, keepDims = false) => tf.mean(x, axis, keepDims),
    max: (x, axis, keepDims = false) => tf.max(x, axis, keepDims),

    matmul: (a, b, transposeB = false) => matmul(a, b, transposeB),
    linear: (x, weight, bias) => {
      const inF = x.shape[x.rank - 1] as number;
      const outF = weight.shape[0] as number;
      const lead = x.shape.slice(0, -1);
      const x2 = tf.reshape(x, [-1, inF]);
      const weightT = transposed.get(weight); // [in, out] copy of a parameter, when there is one
      let y = weightT ? tf.matMul(x2, weightT) : matMulPlain(x2, weight, false, true); // [N, out]
      if (bias) y = tf.add(y, bias);
      return tf.reshape(y, [...lead, outF]);
    },
    softmax: (x) => tf.softmax(x),
    layerNorm: (x, gamma, beta, eps) => {
      const { mean, variance } = tf.moments(x, -1, true);
      return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, eps))), gamma), beta);
    },
  };
}
