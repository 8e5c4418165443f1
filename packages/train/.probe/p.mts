import { createTfjsBackend } from '@qf/backends/tfjs';
import { Rng } from '@qf/core';
import { QFORMER_DEFAULTS } from '@qf/io';
import { initStage1Params, sampleStage1Negatives, stage1ValueAndGrad, stage1ParamSpecs } from '@qf/losses';
import { AdamW } from '@qf/train';
import * as tf from '@tensorflow/tfjs-core';

const which = process.argv[2] ?? 'wasm';
const vocab = Number(process.argv[3] ?? 30522);
const backend = await createTfjsBackend(which as 'wasm');
const spec = { qformer: { ...QFORMER_DEFAULTS, numHiddenLayers: 4, hiddenSize: 256, numAttentionHeads: 4, intermediateSize: 1024, encoderHiddenSize: 384, vocabSize: vocab }, numQueryTokens: 16, textPath: true, retrievalHeads: { imageTextHiddenSize: 256 } };
const params = backend.createParams(initStage1Params(spec, { seed: 0 }));
const rng = new Rng(1);
const b = 16, t = 16;
const ids = Int32Array.from({ length: b * t }, (_, i) => (i % t === 0 ? 101 : 1000 + (i * 7) % 2000));
const batch = { imageEmbeds: { dtype: 'F32' as const, shape: [b, 65, 384], data: Float32Array.from({ length: b * 65 * 384 }, () => rng.normal()) }, inputIds: { dtype: 'I32' as const, shape: [b, t], data: ids }, attentionMask: { dtype: 'I32' as const, shape: [b, t], data: new Int32Array(b * t).fill(1) } };
const trainable = stage1ParamSpecs(spec).map((p) => p.name);
const opt = new AdamW(backend, params, trainable, { lr: 1e-4 });
const text = { decoderBosId: vocab - 1, padTokenId: 0 };
for (let k = 0; k < 2; k++) {
  let t0 = performance.now();
  const neg = await sampleStage1Negatives(backend, spec, params, batch, rng, text);
  const tNeg = performance.now() - t0;
  t0 = performance.now();
  for (const parts of [['itc'], ['itm'], ['itg']] as const) {
    const t1 = performance.now();
    const r = await stage1ValueAndGrad(backend, spec, params, batch, { ...text, trainable, negatives: neg, parts: [...parts] });
    console.log(`  ${parts[0]} vag ${(performance.now() - t1).toFixed(0)} ms`);
    backend.disposeParams(r.grads);
  }
  t0 = performance.now();
  const r = await stage1ValueAndGrad(backend, spec, params, batch, { ...text, trainable, negatives: neg });
  const tVag = performance.now() - t0;
  t0 = performance.now();
  await opt.step(r.grads);
  const tOpt = performance.now() - t0;
  backend.disposeParams(r.grads);
  console.log(`step ${k}: negatives ${tNeg.toFixed(0)} ms, valueAndGrad ${tVag.toFixed(0)} ms, adamw ${tOpt.toFixed(0)} ms, tensors ${tf.memory().numTensors}`);
}
