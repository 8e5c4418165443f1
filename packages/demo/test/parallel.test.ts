import { createTfjsBackend } from '@qf/backends/tfjs';
import { type TrainingBackend, requireTraining } from '@qf/core';
import { generateShapes } from '@qf/shapes';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OptLanguageModel } from '@qf/bridge';
import type { HostTensor } from '@qf/io';
import { DEFAULT_SIZES, demoConfig, demoConfigJson } from '../src/config.js';
import { demoData, splitTensors } from '../src/data.js';
import { initLm } from '../src/lm.js';
import { initQFormer, qformerSpec, trainStage2 } from '../src/qformer.js';
import { silentReporter } from '../src/report.js';
import { encoderInputs, encoderLoss, initEncoder } from '../src/encoder.js';
import { DemoError } from '../src/errors.js';
import { GradWorker, dataParallelGrads } from '../src/parallel.js';

const vision = demoConfig(DEFAULT_SIZES).vision;
// Two-object scenes only: every slot has a label, so the mean of the two halves' losses is the
// full batch's mean and the averaged gradient is the full batch's gradient.
const split = splitTensors(
  generateShapes({ seed: 5, counts: { train: 8, validation: 0, test: 0 }, singleFraction: 0 }).train,
  vision.imageSize,
  vision.patchSize,
);
const idx = Int32Array.from({ length: 8 }, (_, i) => i);
let backend: TrainingBackend<tf.Tensor>;
let worker: GradWorker;

beforeAll(async () => {
  backend = requireTraining(await createTfjsBackend('cpu'));
  worker = await GradWorker.start({
    task: 'encoder',
    backend: 'tfjs-cpu',
    sizes: DEFAULT_SIZES,
    denseWeight: 1,
  });
}, 60_000);
afterAll(async () => {
  await worker?.close();
});

describe('data-parallel encoder gradients (worker thread)', () => {
  it('average to the full batch gradient, with no tfjs tensors left behind', async () => {
    const params = backend.createParams(initEncoder(vision, 3));
    const trainable = params.names();
    const loss = encoderLoss<tf.Tensor>(vision, 1);
    const full = await backend.valueAndGrad(loss, params, trainable, encoderInputs(vision, split, idx));
    const before = tf.memory().numTensors;
    const par = await dataParallelGrads(backend, params, trainable, loss, worker, [
      encoderInputs(vision, split, idx.subarray(0, 4)),
      encoderInputs(vision, split, idx.subarray(4)),
    ]);
    const a = await backend.readParams(full.grads);
    const b = await backend.readParams(par.grads);
    backend.disposeParams(par.grads);
    expect(tf.memory().numTensors).toBe(before);
    expect(par.loss).toBeCloseTo(full.loss, 5);
    let worst = 0;
    for (const [name, g] of a) {
      const h = b.get(name)?.data as Float32Array;
      (g.data as Float32Array).forEach((v, i) => {
        worst = Math.max(worst, Math.abs(v - (h[i] as number)));
      });
    }
    expect(a.size).toBe(trainable.length);
    expect(worst).toBeLessThan(1e-5);
    backend.disposeParams(full.grads);
    backend.disposeParams(params);
  }, 60_000);

  it('turns a failure inside the worker into a DemoError', async () => {
    const params = backend.createParams(initEncoder(vision, 3));
    const inputs = encoderInputs(vision, split, idx.subarray(0, 2));
    const bad = {
      ...inputs,
      pixel_values: { ...inputs['pixel_values'], shape: [2, 3, 8, 8] },
    } as typeof inputs;
    const err = await worker.compute(await backend.readParams(params), bad).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DemoError);
    expect((err as DemoError).code).toBe('DEMO_BACKEND');
    backend.disposeParams(params);
  }, 60_000);
});

describe('stage 2 with the kept objectives on a worker thread', () => {
  it('ends with the same weights as on one thread', async () => {
    const config = demoConfig(DEFAULT_SIZES);
    const spec = qformerSpec(config);
    const lm = OptLanguageModel.fromTextConfig(demoConfigJson(DEFAULT_SIZES)['text_config']);
    const data = demoData(1, { train: 24, validation: 2, test: 2 }, vision.imageSize, vision.patchSize);
    const n = data.train.examples.length;
    const tokens = (vision.imageSize / vision.patchSize) ** 2 + 1;
    let x = 1;
    const features: HostTensor<'F32'> = {
      dtype: 'F32',
      shape: [n, tokens, vision.hiddenSize],
      data: Float32Array.from({ length: n * tokens * vision.hiddenSize }, () => {
        x = (x * 48271) % 2147483647;
        return x / 2147483647 - 0.5;
      }),
    };
    const train = async (workers: 1 | 2) => {
      const params = backend.createParams(new Map([...initLm(lm, 1), ...initQFormer(spec, 2)]));
      const run = await trainStage2(
        backend,
        spec,
        lm,
        params,
        data.train,
        features,
        {
          steps: 3,
          batch: 8,
          lr: 1e-3,
          seed: 5,
          keep: ['itc', 'itm'],
          keepWeight: 0.05,
          keepBatch: 6,
          workers,
          backendName: 'tfjs-cpu',
          sizes: DEFAULT_SIZES,
        },
        silentReporter,
      );
      const weights = await backend.readParams(params);
      backend.disposeParams(params);
      return { run, weights };
    };
    const one = await train(1);
    const before = tf.memory().numTensors;
    const two = await train(2);
    expect(tf.memory().numTensors).toBe(before);
    expect(two.run.losses).toEqual(one.run.losses);
    expect(two.run.parts).toEqual(one.run.parts);
    expect(one.run.parts['loss_itm']).toHaveLength(3);
    expect([...two.weights.keys()]).toEqual([...one.weights.keys()]);
    for (const [name, t] of one.weights) expect([name, two.weights.get(name)?.data]).toEqual([name, t.data]);
  }, 120_000);
});
