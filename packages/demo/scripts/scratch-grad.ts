import { createTfjsBackend } from '@qf/backends/tfjs';
import { requireTraining, visionTower } from '@qf/core';
import type { HostTensor } from '@qf/io';
import { demoConfig, DEFAULT_SIZES } from '../src/config.js';
import { demoData, gatherRows } from '../src/data.js';
import { initEncoder } from '../src/encoder.js';

const backend = requireTraining(await createTfjsBackend('cpu'));
const cfg = demoConfig({ ...DEFAULT_SIZES }).vision;
const data = demoData(0, { train: 8, validation: 8, test: 8 }, 32, 8);
const init = initEncoder(cfg, 1);
// stress-ish: bigger values
const params = backend.createParams(init);
const idx = Int32Array.from([0, 1, 2, 3]);
const inputs: Record<string, HostTensor> = { pixel_values: { dtype: 'F32', shape: [4, 3, 32, 32], data: gatherRows(data.train.pixels.data, 3 * 32 * 32, idx) } };
const w = new Float32Array(4 * 17 * 64).map((_, i) => Math.sin(i * 0.37));
const loss = (ops: any, p: any, inp: any) => {
  const h = visionTower(ops, cfg, p, inp.pixel_values).lastHiddenState;
  return { loss: ops.sum(ops.reshape(ops.mul(h, ops.constant(w, [4, 17, 64])), [-1]), 0) };
};
const names = ['vision_model.embeddings.position_embedding', 'vision_model.embeddings.patch_embedding.weight', 'vision_model.embeddings.class_embedding', 'vision_model.encoder.layers.0.self_attn.qkv.weight', 'vision_model.encoder.layers.1.mlp.fc1.weight'];
const r = await backend.valueAndGrad(loss, params, names, inputs);
const grads = await backend.readParams(r.grads);
for (const n of names) {
  const g = grads.get(n)!.data as Float32Array;
  for (const k of [0, 5, 77]) {
    const base = init.get(n)!;
    const eps = 1e-2;
    const plus = new Map(init); const d1 = Float32Array.from(base.data as Float32Array); d1[k]! += eps; plus.set(n, { ...base, data: d1 });
    const minus = new Map(init); const d2 = Float32Array.from(base.data as Float32Array); d2[k]! -= eps; minus.set(n, { ...base, data: d2 });
    const pp = backend.createParams(plus); const pm = backend.createParams(minus);
    const lp = (await backend.valueAndGrad(loss, pp, [n], inputs)).loss;
    const lm = (await backend.valueAndGrad(loss, pm, [n], inputs)).loss;
    console.log(n, k, g[k], (lp - lm) / (2 * eps));
  }
}
