import { createTfjsBackend } from '@qf/backends/tfjs';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';

/** `ops.matmul` broadcasts batch dims like NumPy on tfjs (whose kernels index by flat modulo). */
describe('tfjs ops.matmul batch broadcasting', () => {
  const rand = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, 'float32', seed);
  const cases: [string, number[], number[], boolean][] = [
    ['shared image K: [T,h,Q,d] x [1,h,N,d]^T', [3, 2, 4, 5], [1, 2, 6, 5], true],
    ['shared image V: [T,h,Q,N] x [1,h,N,d]', [3, 2, 4, 6], [1, 2, 6, 5], false],
    ['trailing broadcast: [h,T,Q,d] x [h,1,d,N]', [2, 3, 4, 5], [2, 1, 5, 6], false],
    ['rank broadcast: [T,h,Q,d] x [h,d,N]', [3, 2, 4, 5], [2, 5, 6], false],
    ['both sides: [T,1,Q,d] x [1,h,d,N]', [3, 1, 4, 5], [1, 2, 5, 6], false],
  ];
  for (const [what, sa, sb, transposeB] of cases) {
    it(what, async () => {
      const backend = await createTfjsBackend('cpu');
      const a = rand(sa, 1);
      const b = rand(sb, 2);
      const batch = tf.broadcast_util.assertAndGetBroadcastShape(sa.slice(0, -2), sb.slice(0, -2));
      const ref = tf.matMul(
        tf.broadcastTo(a, [...batch, ...sa.slice(-2)]),
        tf.broadcastTo(b, [...batch, ...sb.slice(-2)]),
        false,
        transposeB,
      );
      const got = backend.ops.matmul(a, b, transposeB);
      expect(got.shape).toEqual(ref.shape);
      const d = tf.max(tf.abs(tf.sub(got, ref))).dataSync()[0] as number;
      expect(d).toBeLessThan(1e-5);
      tf.dispose([a, b, ref, got]);
    });
  }
});
