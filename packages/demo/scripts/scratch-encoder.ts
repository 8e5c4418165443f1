import { createTfjsBackend } from '@qf/backends/tfjs';
import { requireTraining } from '@qf/core';
import { enableProdMode } from '@tensorflow/tfjs-core';
import { demoConfig, DEFAULT_SIZES } from '../src/config.js';
import { demoData } from '../src/data.js';
import { encoderAccuracy, initEncoder, pretrainEncoder } from '../src/encoder.js';

const [, , be = 'cpu', stepsS = '20', batchS = '32', lrS = '2e-3', patchS = '8', hidS = '64', layersS = '2', trainS = '4000'] = process.argv;
enableProdMode();
const backend = requireTraining(await createTfjsBackend(be as 'cpu'));
const cfg = demoConfig({ ...DEFAULT_SIZES, patchSize: +patchS, visionHidden: +hidS, visionLayers: +layersS }).vision;
let t = performance.now();
const data = demoData(0, { train: +trainS, validation: 200, test: 200 }, 32, +patchS);
console.log('data', ((performance.now() - t) / 1000).toFixed(2), 's');
const params = backend.createParams(initEncoder(cfg, 1, (process.env.INIT ?? 'stress') as 'hf', process.env.SINCOS !== '0'));
let last = 0;
const rep = {
  phase: (name: string) => ({ name, step: (s: number, l: number) => { if (s % 50 === 0 || s === +stepsS) console.log(s, l.toFixed(4)); last = l; }, end: () => undefined }),
  info: () => undefined,
};
t = performance.now();
const run = await pretrainEncoder(backend, cfg, params, data.train, { steps: +stepsS, batch: +batchS, lr: +lrS, seed: 3, denseWeight: +(process.env.DW ?? 1) }, rep);
console.log(be, 'steps/s', run.stepsPerSecond.toFixed(2), 'secs', run.seconds.toFixed(1), 'last', last);
t = performance.now();
const acc = await encoderAccuracy(backend, cfg, params, data.validation);
console.log('val acc', JSON.stringify(acc), ((performance.now() - t) / 1000).toFixed(2), 's');
