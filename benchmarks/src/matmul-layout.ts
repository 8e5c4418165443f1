/**
 * `pnpm run probe:matmul`: times the Q-Former's largest product (the cross-attention K/V projection,
 * image features [257, 1408] x weight [768, 1408]^T) on each tfjs backend with the weight as stored
 * (PyTorch [out, in], `transposeB`) and pre-transposed ([in, out]). Shows how much the weight layout
 * costs a backend; not part of the benchmark tables.
 */
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs-core';
import { median } from './stats.js';

const [m, k, n] = [257, 1408, 768];
const runs = 5;
const flop = 2 * m * k * n;

for (const backend of ['cpu', 'wasm']) {
  await tf.setBackend(backend);
  await tf.ready();
  const x = tf.randomNormal([m, k], 0, 1, 'float32', 1);
  const w = tf.randomNormal([n, k], 0, 1, 'float32', 2);
  const wt = tf.transpose(w);
  for (const layout of ['[out,in] transposeB', '[in,out]'] as const) {
    const times: number[] = [];
    for (let i = 0; i <= runs; i++) {
      const t0 = performance.now();
      const y = layout === '[in,out]' ? tf.matMul(x, wt) : tf.matMul(x, w, false, true);
      await y.data();
      y.dispose();
      if (i > 0) times.push(performance.now() - t0); // the first run is a warm-up
    }
    const ms = median(times);
    process.stdout.write(
      `tfjs-${backend} [${m},${k}] x W ${layout}: median ${ms.toFixed(1)} ms over ${runs} runs, ${(flop / ms / 1e6).toFixed(2)} GFLOP/s\n`,
    );
  }
  tf.dispose([x, w, wt]);
}
