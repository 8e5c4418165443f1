import { createTfjsBackend } from '@qf/backends/tfjs';
import type { HostTensor } from '@qf/io';
import { STAGE1_NAMES, stage1ParamSpecs, stage1ValueAndGrad } from '@qf/losses';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  AdamW,
  type StepMetrics,
  Stage1Trainer,
  TrainError,
  constantLr,
  stepRng,
  warmupCosine,
} from '../src/index.js';
import { SPEC, TEXT, bytesOf, stage1Batch, stage1Tensors } from './fixtures/tiny.js';

type Backend = Awaited<ReturnType<typeof createTfjsBackend>>;
let backend: Backend;
beforeAll(async () => {
  backend = await createTfjsBackend('cpu');
});

const TRAINABLE = stage1ParamSpecs({ ...SPEC, languageProjection: undefined }).map((p) => p.name);

describe('Stage1Trainer', () => {
  it('one step equals stage1ValueAndGrad + AdamW by hand (same rng, lr, clamp), bit for bit', async () => {
    const tensors = stage1Tensors(11);
    const a = backend.createParams(tensors);
    const b = backend.createParams(tensors);
    const schedule = warmupCosine({ initLr: 1e-2, warmupSteps: 2, warmupStartLr: 1e-3, totalSteps: 10 });
    const trainer = new Stage1Trainer(backend, {
      spec: SPEC,
      params: a,
      text: TEXT,
      data: (step) => stage1Batch(step),
      totalSteps: 10,
      schedule,
      seed: 5,
    });
    expect([...trainer.trainable]).toEqual(TRAINABLE);
    const opt = new AdamW(backend, b, TRAINABLE, { lr: 1 });
    for (let k = 0; k < 3; k++) {
      const m = await trainer.trainStep();
      const r = await stage1ValueAndGrad(backend, SPEC, b, stage1Batch(k), {
        ...TEXT,
        trainable: TRAINABLE,
        rng: stepRng(5, k),
      });
      await opt.step(r.grads, schedule.lr(k));
      backend.disposeParams(r.grads);
      await backend.assignParams((ops) => [
        {
          store: b,
          name: 'temp',
          value: ops.minimum(ops.maximum(b.get('temp'), ops.scalar(0.001)), ops.scalar(0.5)),
        },
      ]);
      expect(m.loss).toBe(r.loss);
      expect(m.lr).toBe(schedule.lr(k));
      expect(m.step).toBe(k + 1);
      expect(m.parts.loss_itc! + m.parts.loss_itm! + m.parts.loss_lm!).toBeCloseTo(m.loss, 5);
    }
    const pa = await backend.readParams(a);
    const pb = await backend.readParams(b);
    for (const name of pa.keys()) expect(bytesOf(pa.get(name)!), name).toEqual(bytesOf(pb.get(name)!));
    trainer.dispose();
    opt.dispose();
    backend.disposeParams(a);
    backend.disposeParams(b);
  });

  it('learns a fixed set, leaves frozen parts bit-identical, leaks no tensors', async () => {
    const tensors = stage1Tensors(12);
    const params = backend.createParams(tensors);
    // freeze one Q-Former layer too: it must not move although it gets gradients
    const frozenLayer = TRAINABLE.filter((n) => n.startsWith('qformer.encoder.layer.1.'));
    const trainable = TRAINABLE.filter((n) => !frozenLayer.includes(n));
    const steps: StepMetrics[] = [];
    const counts: number[] = [];
    const trainer = new Stage1Trainer(backend, {
      spec: SPEC,
      params,
      text: TEXT,
      trainable,
      data: (step) => stage1Batch(step, 2),
      totalSteps: 30,
      schedule: constantLr(3e-3),
      maxGradNorm: 5,
      reporters: [
        {
          step: (m) => {
            steps.push(m);
            counts.push(tf.memory().numTensors);
          },
        },
      ],
    });
    const summary = await trainer.train();
    expect(summary.step).toBe(30);
    expect(summary.stepsRun).toBe(30);
    // tensor count flat from the second step on (moments are created in the first)
    expect(new Set(counts.slice(1)).size).toBe(1);
    const first = (steps[0]!.loss + steps[1]!.loss) / 2;
    const last = (steps[28]!.loss + steps[29]!.loss) / 2;
    expect(last).toBeLessThan(0.8 * first);
    for (const m of steps) {
      expect(m.gradNorm).toBeGreaterThan(0);
      expect(m.extra?.temp).toBeGreaterThanOrEqual(0.001);
      expect(m.extra?.temp).toBeLessThanOrEqual(0.5);
      expect(Object.keys(m.parts).sort()).toEqual(['loss_itc', 'loss_itm', 'loss_lm']);
    }
    const after = await backend.readParams(params);
    for (const name of [
      ...frozenLayer,
      'vision_model.post_layernorm.weight',
      'vision_model.post_layernorm.bias',
    ])
      expect(bytesOf(after.get(name)!), name).toEqual(bytesOf(tensors.get(name)!));
    for (const name of trainable.filter((n) => !n.endsWith('position_embeddings.weight')))
      expect(bytesOf(after.get(name)!), `${name} should have moved`).not.toEqual(bytesOf(tensors.get(name)!));
    trainer.dispose();
    backend.disposeParams(params);
  });

  it('clamps temp into [0.001, 0.5] after each step (LAVIS BLIP-1), or not with clampTemperature: false', async () => {
    const temps: Record<string, number[]> = {};
    for (const clamp of [undefined, false] as const) {
      const tensors = stage1Tensors(13);
      tensors.set(STAGE1_NAMES.temp, { dtype: 'F32', shape: [], data: Float32Array.of(0.495) });
      const params = backend.createParams(tensors);
      const seen: number[] = [];
      // only temp trains; its gradient here is negative, and AdamW moves it up by ~lr per step, past 0.5
      const trainer = new Stage1Trainer(backend, {
        spec: SPEC,
        params,
        text: TEXT,
        trainable: ['temp'],
        data: (step) => stage1Batch(step),
        totalSteps: 3,
        schedule: constantLr(0.01),
        adamw: { weightDecay: 0 },
        ...(clamp === false ? { clampTemperature: false as const } : {}),
        reporters: [{ step: (m) => seen.push(m.extra?.temp as number) }],
      });
      await trainer.train();
      temps[String(clamp)] = seen;
      trainer.dispose();
      backend.disposeParams(params);
    }
    expect(temps.undefined).toEqual([0.5, 0.5, 0.5]);
    expect(temps.false!.every((t) => t > 0.5)).toBe(true);
  });

  it('typed errors: NaN loss stops before the update, data that ends, steps past the end', async () => {
    const tensors = stage1Tensors(14);
    tensors.set('temp', { dtype: 'F32', shape: [], data: Float32Array.of(0) }); // ITC divides by 0
    const params = backend.createParams(tensors);
    const trainer = new Stage1Trainer(backend, {
      spec: SPEC,
      params,
      text: TEXT,
      parts: ['itc', 'itg'], // no ITM: its negative sampler rejects NaN weights itself (LOSS_INPUT)
      data: [stage1Batch(0)],
      totalSteps: 2,
      schedule: constantLr(1e-3),
    });
    await expect(trainer.trainStep()).rejects.toMatchObject({ code: 'TRAIN_NONFINITE' });
    expect(trainer.step).toBe(0);
    expect((await trainer.stateJson()).data).toEqual({ kind: 'iterable', consumed: 0 }); // rolled back
    await expect(trainer.trainStep()).rejects.toMatchObject({ code: 'TRAIN_NONFINITE' }); // same batch
    const after = await backend.readParams(params);
    for (const [name, t] of tensors) expect(bytesOf(after.get(name) as HostTensor), name).toEqual(bytesOf(t));
    trainer.dispose();
    backend.disposeParams(params);

    const ok = backend.createParams(stage1Tensors(15));
    const short = new Stage1Trainer(backend, {
      spec: SPEC,
      params: ok,
      text: TEXT,
      data: [stage1Batch(0)],
      totalSteps: 2,
      schedule: constantLr(1e-3),
    });
    await short.trainStep();
    const err = await short.trainStep().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TrainError);
    expect((err as TrainError).code).toBe('TRAIN_DATA');
    short.dispose();
    const done = new Stage1Trainer(backend, {
      spec: SPEC,
      params: ok,
      text: TEXT,
      data: (s) => stage1Batch(s),
      totalSteps: 1,
      schedule: constantLr(1e-3),
    });
    await done.train();
    await expect(done.trainStep()).rejects.toMatchObject({ code: 'TRAIN_OPTIONS' });
    done.dispose();
    expect(
      () =>
        new Stage1Trainer(backend, {
          spec: SPEC,
          params: ok,
          text: TEXT,
          data: (s) => stage1Batch(s),
          totalSteps: 0,
          schedule: constantLr(1e-3),
        }),
    ).toThrow(TrainError);
    backend.disposeParams(ok);
  });
});
