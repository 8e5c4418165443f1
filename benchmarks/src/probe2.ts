import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import '@tensorflow/tfjs-backend-cpu';
await tf.setBackend(process.argv[2] ?? 'wasm');
await tf.ready();
const x = tf.randomNormal([257, 1408]);
const w = tf.randomNormal([768, 1408]);
const wt = tf.transpose(w);
const fl = 2 * 257 * 1408 * 768;
for (const tb of [true, false, true, false]) {
  const t0 = performance.now();
  for (let i = 0; i < 5; i++) { const c = tb ? tf.matMul(x, w, false, true) : tf.matMul(x, wt); await c.data(); c.dispose(); }
  const dt = (performance.now() - t0) / 5;
  console.log('transposeB', tb, dt.toFixed(1), 'ms', (fl / dt / 1e6).toFixed(2), 'GFLOP/s');
}
