import { createTfjsBackend } from '@qf/backends/tfjs';
import { QFormerModel, qformerParamSpecs, initParams } from '@qf/core';
import { QFORMER_DEFAULTS } from '@qf/io';
import * as tf from '@tensorflow/tfjs-core';
const backendName = (process.argv[2] ?? 'cpu') as 'cpu' | 'wasm';
const b = await createTfjsBackend(backendName);
console.log(b.name, tf.getBackend());
const spec = { qformer: { ...QFORMER_DEFAULTS }, numQueryTokens: 32, textPath: false };
let t0 = performance.now();
const tensors = initParams(qformerParamSpecs(spec), { seed: 1 });
console.log('init', performance.now() - t0);
const model = QFormerModel.fromTensors(b, spec, tensors);
console.log('tensors', tf.memory().numTensors);
const B = Number(process.argv[3] ?? 1);
const data = new Float32Array(B * 257 * 1408).map(() => Math.random());
for (let i = 0; i < 3; i++) {
  t0 = performance.now();
  const out = await model.run({ image_embeds: { dtype: 'F32', shape: [B, 257, 1408], data } });
  console.log('run', performance.now() - t0, Object.keys(out), out['query_output']?.shape, tf.memory().numTensors);
}
