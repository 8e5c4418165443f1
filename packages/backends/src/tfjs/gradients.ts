import * as tf from '@tensorflow/tfjs-core';
import { matMulPlain } from './ops.js';

/**
 * Gradients of the tfjs kernels that the @qf/core op interface emits.
 *
 * `@tensorflow/tfjs-core` registers no gradient by itself: the union package `@tensorflow/tfjs` does,
 * through an ES-module side effect (`@tensorflow/tfjs-core/dist/register_all_gradients`) that plain
 * Node cannot load (extension-less imports) and that the Node bundle of tfjs-core leaves out. So the
 * tfjs backend registers its own, for exactly the kernels its ops run (listed below), and only where
 * no gradient is registered yet: an app that loaded tfjs's own gradients keeps them.
 *
 * Every function here is differentiated once (no higher-order gradients) and only uses kernels that
 * the cpu, wasm, webgl and webgpu backends all have (e.g. ScatterNd for the gather gradient, which wasm
 * has and UnsortedSegmentSum, which it lacks).
 */

type Grads = Record<string, () => tf.Tensor> | (() => tf.Tensor)[];
type GradFn = (dy: tf.Tensor, saved: tf.Tensor[], attrs: Record<string, unknown>) => Grads;

interface Config {
  readonly inputsToSave?: string[];
  readonly outputsToSave?: boolean[];
  readonly saveAllInputs?: boolean;
  readonly gradFunc: GradFn;
}

const at = (saved: tf.Tensor[], i: number): tf.Tensor => saved[i] as tf.Tensor;

/** Sums `g` over the axes along which `shape` was broadcast to `g.shape`, then reshapes to `shape`. */
function unbroadcast(g: tf.Tensor, shape: readonly number[]): tf.Tensor {
  const axes = tf.broadcast_util.getReductionAxes([...shape], g.shape);
  const reduced = axes.length > 0 ? tf.sum(g, axes) : g;
  return tf.reshape(reduced, [...shape]);
}

function binary(
  da: (dy: tf.Tensor, a: tf.Tensor, b: tf.Tensor) => tf.Tensor,
  db: (dy: tf.Tensor, a: tf.Tensor, b: tf.Tensor) => tf.Tensor,
): Config {
  return {
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved) => {
      const a = at(saved, 0);
      const b = at(saved, 1);
      return { a: () => unbroadcast(da(dy, a, b), a.shape), b: () => unbroadcast(db(dy, a, b), b.shape) };
    },
  };
}

const mask = (m: tf.Tensor) => tf.cast(m, 'float32');

function axesOf(attr: unknown, rank: number): number[] {
  const list = Array.isArray(attr) ? (attr as number[]) : [attr as number];
  return list.map((a) => (a < 0 ? a + rank : a));
}

/** `dy` of a reduction, reshaped so that it broadcasts against the input. */
function keepDimsGrad(dy: tf.Tensor, xShape: readonly number[], axes: readonly number[]): tf.Tensor {
  return tf.reshape(
    dy,
    xShape.map((d, i) => (axes.includes(i) ? 1 : d)),
  );
}

const CONFIGS: Readonly<Record<string, Config>> = {
  Add: binary(
    (dy) => dy,
    (dy) => dy,
  ),
  Sub: binary(
    (dy) => dy,
    (dy) => tf.neg(dy),
  ),
  Multiply: binary(
    (dy, _a, b) => tf.mul(dy, b),
    (dy, a) => tf.mul(dy, a),
  ),
  RealDiv: binary(
    (dy, _a, b) => tf.div(dy, b),
    (dy, a, b) => tf.neg(tf.div(tf.mul(dy, a), tf.square(b))),
  ),
  Maximum: binary(
    (dy, a, b) => tf.mul(dy, mask(tf.greaterEqual(a, b))),
    (dy, a, b) => tf.mul(dy, mask(tf.less(a, b))),
  ),
  Minimum: binary(
    (dy, a, b) => tf.mul(dy, mask(tf.lessEqual(a, b))),
    (dy, a, b) => tf.mul(dy, mask(tf.greater(a, b))),
  ),
  Sqrt: {
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => ({ x: () => tf.div(dy, tf.mul(tf.sqrt(at(saved, 0)), 2)) }),
  },
  Exp: {
    outputsToSave: [true],
    gradFunc: (dy, saved) => ({ x: () => tf.mul(dy, at(saved, 0)) }),
  },
  Log: {
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => ({ x: () => tf.div(dy, at(saved, 0)) }),
  },
  Tanh: {
    outputsToSave: [true],
    gradFunc: (dy, saved) => ({ x: () => tf.mul(dy, tf.sub(1, tf.square(at(saved, 0)))) }),
  },
  Relu: {
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => ({ x: () => tf.mul(dy, mask(tf.greater(at(saved, 0), 0))) }),
  },
  Erf: {
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => ({
      x: () => tf.mul(dy, tf.mul(tf.exp(tf.neg(tf.square(at(saved, 0)))), 2 / Math.sqrt(Math.PI))),
    }),
  },
  Square: {
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => ({ x: () => tf.mul(dy, tf.mul(at(saved, 0), 2)) }),
  },
  Cast: {
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => ({
      x: () => (at(saved, 0).dtype === 'float32' ? tf.clone(dy) : tf.zerosLike(at(saved, 0))),
    }),
  },
  Identity: { gradFunc: (dy) => ({ x: () => tf.clone(dy) }) },
  Reshape: {
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => ({ x: () => tf.reshape(dy, at(saved, 0).shape) }),
  },
  Transpose: {
    gradFunc: (dy, _saved, attrs) => {
      const perm = attrs['perm'] as number[];
      const inverse = new Array<number>(perm.length);
      perm.forEach((p, i) => {
        inverse[p] = i;
      });
      return { x: () => tf.transpose(dy, inverse) };
    },
  },
  Concat: {
    saveAllInputs: true,
    gradFunc: (dy, saved, attrs) => {
      const axis = axesOf(attrs['axis'], dy.rank)[0] as number;
      const sizes = saved.map((t) => t.shape[axis] as number);
      const parts = tf.split(dy, sizes, axis);
      return parts.map((p) => () => p);
    },
  },
  Slice: {
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const x = at(saved, 0);
      const begin = attrs['begin'] as number[];
      const paddings = x.shape.map(
        (d, i) => [begin[i] ?? 0, d - (begin[i] ?? 0) - (dy.shape[i] as number)] as [number, number],
      );
      return { x: () => tf.pad(dy, paddings) };
    },
  },
  GatherV2: {
    inputsToSave: ['x', 'indices'],
    gradFunc: (dy, saved, attrs) => {
      const x = at(saved, 0);
      const indices = at(saved, 1);
      if ((attrs['axis'] as number) !== 0 || ((attrs['batchDims'] as number) ?? 0) !== 0)
        throw new Error('the @qf/backends gather gradient supports axis 0, batchDims 0 only');
      return {
        x: () => {
          const n = indices.size;
          const rows = tf.reshape(dy, [n, ...x.shape.slice(1)]);
          return tf.scatterND(tf.reshape(tf.cast(indices, 'int32'), [n, 1]), rows, x.shape);
        },
        indices: () => tf.zerosLike(indices),
      };
    },
  },
  Tile: {
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const x = at(saved, 0);
      const reps = attrs['reps'] as number[];
      // out[k * s + j] = x[j] along each axis: view dy as [r0, s0, r1, s1, ...], sum the r axes.
      const split = x.shape.flatMap((s, i) => [reps[i] ?? 1, s]);
      const repAxes = x.shape.map((_, i) => 2 * i);
      return { x: () => tf.reshape(tf.sum(tf.reshape(dy, split), repAxes), x.shape) };
    },
  },
  Sum: {
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const x = at(saved, 0);
      const axes = axesOf(attrs['axis'], x.rank);
      return { x: () => tf.mul(keepDimsGrad(dy, x.shape, axes), tf.onesLike(x)) };
    },
  },
  Mean: {
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const x = at(saved, 0);
      const axes = axesOf(attrs['axis'], x.rank);
      const count = axes.reduce((n, a) => n * (x.shape[a] as number), 1);
      return { x: () => tf.mul(keepDimsGrad(tf.div(dy, count), x.shape, axes), tf.onesLike(x)) };
    },
  },
  Max: {
    inputsToSave: ['x'],
    outputsToSave: [true],
    gradFunc: (dy, saved, attrs) => {
      const x = at(saved, 0);
      const y = at(saved, 1);
      const axes = axesOf(attrs['reductionIndices'], x.rank);
      const top = keepDimsGrad(y, x.shape, axes);
      // 1 where x attains the max. tfjs-wasm's comparison kernels are ~10x slower than arithmetic on
      // large inputs (1 s for LM logits [16, 16, 30522]); there 1 - sign(max - x) (max - x >= 0)
      // gives the same mask for finite x.
      const hit = () =>
        tf.getBackend() === 'wasm' ? tf.sub(1, tf.sign(tf.sub(top, x))) : mask(tf.equal(x, top));
      return { x: () => tf.mul(keepDimsGrad(dy, x.shape, axes), hit()) };
    },
  },
  BatchMatMul: {
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved, attrs) => {
      const a = at(saved, 0);
      const b = at(saved, 1);
      const ta = attrs['transposeA'] as boolean;
      const tb = attrs['transposeB'] as boolean;
      const mm = (x: tf.Tensor, y: tf.Tensor, tx: boolean, ty: boolean) => matMulPlain(x, y, tx, ty);
      let da: () => tf.Tensor;
      let db: () => tf.Tensor;
      if (!ta && !tb) {
        da = () => mm(dy, b, false, true);
        db = () => mm(a, dy, true, false);
      } else if (!ta && tb) {
        da = () => mm(dy, b, false, false);
        db = () => mm(dy, a, true, false);
      } else if (ta && !tb) {
        da = () => mm(b, dy, false, true);
        db = () => mm(a, dy, false, false);
      } else {
        da = () => mm(b, dy, true, true);
        db = () => mm(dy, a, true, true);
      }
      return { a: () => unbroadcast(da(), a.shape), b: () => unbroadcast(db(), b.shape) };
    },
  },
  Softmax: {
    outputsToSave: [true],
    gradFunc: (dy, saved, attrs) => {
      const y = at(saved, 0);
      const dim = axesOf(attrs['dim'], y.rank);
      return { logits: () => tf.mul(y, tf.sub(dy, tf.sum(tf.mul(dy, y), dim, true))) };
    },
  },
};

let registered = false;

/** Registers the gradients above for every kernel that has none yet (idempotent). */
export function ensureGradients(): void {
  if (registered) return;
  for (const [kernelName, config] of Object.entries(CONFIGS)) {
    if (tf.getGradient(kernelName) !== undefined) continue;
    tf.registerGradient({ kernelName, ...config } as unknown as tf.GradConfig);
  }
  registered = true;
}

/** The kernels whose gradients {@link ensureGradients} provides. */
export const GRADIENT_KERNELS: readonly string[] = Object.keys(CONFIGS);
