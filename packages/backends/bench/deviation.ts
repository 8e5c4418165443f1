/** int8 and float16 weights vs float32 on the benchmark workload: max / mean abs deviation of query_output. */
import { QFormerModel } from '@qf/core';
import { type WeightFormat, createOnnxBackend } from '@qf/backends/onnx';
import * as ort from 'onnxruntime-node';
import { imageEmbeds, weights, workload } from './workload.js';

const w = workload(process.argv.includes('--quick'));
const { tensors } = weights(w);
const x = imageEmbeds(w, 2);
const run = async (format: WeightFormat) => {
  const backend = createOnnxBackend({ ort, intraOpNumThreads: 2, weights: format });
  const model = QFormerModel.fromTensors(backend, w.spec, tensors);
  const out = (await model.run({ image_embeds: x }))['query_output']?.data as Float32Array;
  await backend.dispose();
  return out;
};
const ref = await run('float32');
let refScale = 0;
for (const v of ref) refScale = Math.max(refScale, Math.abs(v));
for (const f of ['int8', 'float16'] as const) {
  const got = await run(f);
  let max = 0;
  let sum = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs((got[i] as number) - (ref[i] as number));
    max = Math.max(max, d);
    sum += d;
  }
  console.log(JSON.stringify({ weights: f, maxAbs: max, meanAbs: sum / ref.length, maxAbsOutput: refScale }));
}
