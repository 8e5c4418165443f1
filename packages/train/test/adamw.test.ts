import { Rng } from '@qf/core';
import { createTfjsBackend } from '@qf/backends/tfjs';
import type { HostTensor } from '@qf/io';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { AdamW, TrainError, clipGradNorm, gradNorm, lavisDecay } from '../src/index.js';
import { type RefAdamW, refAdamW, refClip, refStep } from './reference.js';

type Backend = Awaited<ReturnType<typeof createTfjsBackend>>;
let backend: Backend;
beforeAll(async () => {
  backend = await createTfjsBackend('cpu');
});

/** Shapes covering both groups: decayed (2-d+, no bias/ln/bn in the name) and not. */
const SHAPES: Record<string, number[]> = {
  'enc.dense.weight': [3, 4], // decay
  'enc.dense.bias': [3], // no decay: bias
  query_tokens: [1, 2, 3], // decay
  temp: [], // no decay: 0-d
  'enc.ln_post.weight': [2, 2], // no decay: "ln" in the name although 2-d
  'enc.bn.scale': [2, 3], // no decay: "bn"
  'enc.LayerNorm.weight': [4], // no decay: 1-d
  unused: [2, 2], // decay, gradient always zero
  frozen: [2, 3], // not trainable
};
const TRAINABLE = Object.keys(SHAPES).filter((n) => n !== 'frozen');

function initTensors(seed: number): Map<string, HostTensor> {
  const rng = new Rng(seed);
  const out = new Map<string, HostTensor>();
  for (const [name, shape] of Object.entries(SHAPES)) {
    const n = shape.reduce((a, b) => a * b, 1);
    out.set(name, { dtype: 'F32', shape, data: Float32Array.from({ length: n }, () => rng.normal()) });
  }
  return out;
}

/** Gradients of mixed scale (some tiny, so eps matters); `unused` stays zero. */
function randomGrads(rng: Rng, scale: number): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const name of TRAINABLE) {
    const shape = SHAPES[name] as number[];
    const n = shape.reduce((a, b) => a * b, 1);
    const data = Float32Array.from({ length: n }, (_, i) =>
      name === 'unused' ? 0 : rng.normal() * scale * (i % 3 === 0 ? 1e-6 : 1),
    );
    out.set(name, { dtype: 'F32', shape, data });
  }
  return out;
}

const f64 = (t: HostTensor) => Float64Array.from(t.data as Float32Array);

/**
 * Float32 vs float64: every AdamW op adds at most a few float32 roundings (2^-24 relative) to the
 * parameter or to the update, so after `steps` steps the error is bounded by
 * `steps * 8 * 2^-24 * (|p| + lr)`.
 */
function expectNearRef(actual: HostTensor, ref: Float64Array, steps: number, lr: number, what: string) {
  const a = actual.data as Float32Array;
  for (let i = 0; i < ref.length; i++) {
    const r = ref[i] as number;
    const tol = steps * 8 * 2 ** -24 * (Math.abs(r) + lr);
    expect(Math.abs((a[i] as number) - r), `${what}[${i}] ${a[i]} vs ${r}`).toBeLessThanOrEqual(tol);
  }
}

function expectMomentsNear(actual: HostTensor, ref: Float64Array, what: string) {
  const a = actual.data as Float32Array;
  for (let i = 0; i < ref.length; i++) {
    const r = ref[i] as number;
    expect(Math.abs((a[i] as number) - r), `${what}[${i}]`).toBeLessThanOrEqual(64 * 2 ** -24 * Math.abs(r));
  }
}

async function checkAgainstRef(opt: AdamW<tf.Tensor>, ref: RefAdamW, steps: number, lr: number) {
  const params = await backend.readParams(opt.params, TRAINABLE);
  const state = await opt.stateDict();
  expect(state.step).toBe(ref.t);
  for (const q of ref.params) {
    expectNearRef(params.get(q.name) as HostTensor, q.p, steps, lr, q.name);
    expectMomentsNear(state.expAvg.get(q.name) as HostTensor, q.m, `exp_avg ${q.name}`);
    expectMomentsNear(state.expAvgSq.get(q.name) as HostTensor, q.v, `exp_avg_sq ${q.name}`);
  }
}

describe('AdamW', () => {
  it('splits decay / no-decay as LAVIS does', async () => {
    const params = backend.createParams(initTensors(1));
    const opt = new AdamW(backend, params, TRAINABLE, { lr: 1e-3 });
    expect(await opt.groups()).toEqual({
      decay: ['enc.dense.weight', 'query_tokens', 'unused'],
      noDecay: ['enc.dense.bias', 'temp', 'enc.ln_post.weight', 'enc.bn.scale', 'enc.LayerNorm.weight'],
    });
    expect(lavisDecay('qformer.encoder.layer.0.attention.attention.query.weight', [8, 8])).toBe(true);
    expect(lavisDecay('qformer.encoder.layer.0.attention.output.LayerNorm.weight', [8])).toBe(false);
    opt.dispose();
    backend.disposeParams(params);
  });

  it('matches a float64 PyTorch AdamW over 6 steps with changing lr; frozen untouched; no leaks', async () => {
    const init = initTensors(2);
    const params = backend.createParams(init);
    const opt = new AdamW(backend, params, TRAINABLE, { lr: 1e-2, weightDecay: 0.05 });
    const ref = refAdamW(
      new Map(
        TRAINABLE.map((n) => [n, { shape: SHAPES[n] as number[], data: init.get(n)?.data as Float32Array }]),
      ),
      lavisDecay,
    );
    const rng = new Rng(3);
    const lrs = [1e-2, 5e-2, 0.1, 2e-2, 1e-3, 0];
    let tensors = -1;
    for (const [k, lr] of lrs.entries()) {
      const host = randomGrads(rng, k % 2 ? 10 : 0.1);
      const grads = backend.createParams(host);
      await opt.step(grads, lr);
      backend.disposeParams(grads);
      refStep(ref, new Map([...host].map(([n, t]) => [n, f64(t)])), lr);
      if (k === 1) tensors = tf.memory().numTensors;
      if (k > 1) expect(tf.memory().numTensors).toBe(tensors);
    }
    await checkAgainstRef(opt, ref, lrs.length, 0.1);
    const frozen = (await backend.readParams(params, ['frozen'])).get('frozen') as HostTensor;
    expect(new Uint8Array((frozen.data as Float32Array).buffer)).toEqual(
      new Uint8Array((init.get('frozen')?.data as Float32Array).buffer),
    );
    opt.dispose();
    backend.disposeParams(params);
  });

  it('honours betas, eps, weightDecay and a custom decay rule', async () => {
    const init = initTensors(4);
    const params = backend.createParams(init);
    const decay = (name: string) => name !== 'query_tokens';
    const o = { betas: [0.8, 0.99] as [number, number], eps: 1e-3, weightDecay: 0.3 };
    const opt = new AdamW(backend, params, TRAINABLE, { lr: 0.05, ...o, decay });
    const ref = refAdamW(
      new Map(
        TRAINABLE.map((n) => [n, { shape: SHAPES[n] as number[], data: init.get(n)?.data as Float32Array }]),
      ),
      decay,
      o,
    );
    const rng = new Rng(5);
    for (let k = 0; k < 4; k++) {
      const host = randomGrads(rng, 1);
      const grads = backend.createParams(host);
      await opt.step(grads);
      backend.disposeParams(grads);
      refStep(ref, new Map([...host].map(([n, t]) => [n, f64(t)])), 0.05);
    }
    await checkAgainstRef(opt, ref, 4, 0.05);
    opt.dispose();
    backend.disposeParams(params);
  });

  it('stateDict / loadStateDict continue bit-identically', async () => {
    const init = initTensors(6);
    const a = backend.createParams(init);
    const b = backend.createParams(init);
    const optA = new AdamW(backend, a, TRAINABLE, { lr: 0.01 });
    const rng = new Rng(7);
    const grads = [0, 1, 2, 3, 4].map(() => randomGrads(rng, 1));
    const step = async (opt: AdamW<tf.Tensor>, host: Map<string, HostTensor>) => {
      const g = backend.createParams(host);
      await opt.step(g);
      backend.disposeParams(g);
    };
    for (const g of grads.slice(0, 2)) await step(optA, g);
    // B: same parameters and state after step 2, from host copies
    await backend.assignParams((ops) =>
      TRAINABLE.map((name) => ({ store: b, name, value: ops.add(a.get(name), ops.scalar(0)) })),
    );
    const optB = new AdamW(backend, b, TRAINABLE, { lr: 0.01 });
    await optB.loadStateDict(await optA.stateDict());
    expect(optB.stepCount).toBe(2);
    for (const g of grads.slice(2)) {
      await step(optA, g);
      await step(optB, g);
    }
    const pa = await backend.readParams(a);
    const pb = await backend.readParams(b);
    for (const name of TRAINABLE) expect(pb.get(name)?.data, name).toEqual(pa.get(name)?.data);
    const sa = await optA.stateDict();
    const sb = await optB.stateDict();
    for (const name of TRAINABLE) expect(sb.expAvgSq.get(name)?.data).toEqual(sa.expAvgSq.get(name)?.data);
    optA.dispose();
    optB.dispose();
    backend.disposeParams(a);
    backend.disposeParams(b);
  });

  it('rejects bad options and mismatched state with typed errors', async () => {
    const params = backend.createParams(initTensors(8));
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(TrainError);
        return (e as TrainError).code;
      }
      return 'none';
    };
    expect(code(() => new AdamW(backend, params, TRAINABLE, { lr: -1 }))).toBe('TRAIN_OPTIONS');
    expect(code(() => new AdamW(backend, params, [], { lr: 1 }))).toBe('TRAIN_OPTIONS');
    expect(code(() => new AdamW(backend, params, ['temp', 'temp'], { lr: 1 }))).toBe('TRAIN_OPTIONS');
    expect(code(() => new AdamW(backend, params, TRAINABLE, { lr: 1, betas: [1, 0.9] }))).toBe(
      'TRAIN_OPTIONS',
    );
    const opt = new AdamW(backend, params, ['temp', 'enc.dense.bias'], { lr: 1 });
    const good = await opt.stateDict();
    const wrongShape = new Map(good.expAvg);
    wrongShape.set('temp', { dtype: 'F32', shape: [1], data: new Float32Array(1) });
    await expect(opt.loadStateDict({ ...good, expAvg: wrongShape })).rejects.toMatchObject({
      code: 'TRAIN_STATE',
    });
    const extra = new Map(good.expAvgSq);
    extra.set('query_tokens', { dtype: 'F32', shape: [1, 2, 3], data: new Float32Array(6) });
    await expect(opt.loadStateDict({ ...good, expAvgSq: extra })).rejects.toMatchObject({
      code: 'TRAIN_STATE',
    });
    opt.dispose();
    await expect(opt.step(params)).rejects.toMatchObject({ code: 'TRAIN_STATE' });
    backend.disposeParams(params);
  });
});

describe('gradient clipping', () => {
  it('clip_grad_norm_ semantics against float64, then AdamW on the clipped grads', async () => {
    const init = initTensors(9);
    const params = backend.createParams(init);
    const opt = new AdamW(backend, params, TRAINABLE, { lr: 0.01 });
    const ref = refAdamW(
      new Map(
        TRAINABLE.map((n) => [n, { shape: SHAPES[n] as number[], data: init.get(n)?.data as Float32Array }]),
      ),
      lavisDecay,
    );
    const rng = new Rng(10);
    const maxNorm = 1;
    const before = tf.memory().numTensors;
    for (const scale of [5, 0.01, 3]) {
      // scale 0.01: the norm is below maxNorm, so the grads are (almost) unchanged: coef 1
      const host = randomGrads(rng, scale);
      const grads = backend.createParams(host);
      const norm = await clipGradNorm(backend, grads, maxNorm);
      const refGrads = new Map([...host].map(([n, t]) => [n, f64(t)]));
      const refNorm = refClip(refGrads, maxNorm);
      expect(Math.abs(norm - refNorm)).toBeLessThanOrEqual(16 * 2 ** -24 * refNorm);
      const clipped = await backend.readParams(grads);
      for (const [name, g] of refGrads) {
        const a = clipped.get(name)?.data as Float32Array;
        for (let i = 0; i < g.length; i++)
          expect(Math.abs((a[i] as number) - (g[i] as number))).toBeLessThanOrEqual(
            32 * 2 ** -24 * Math.abs(g[i] as number),
          );
      }
      await opt.step(grads);
      backend.disposeParams(grads);
      // the reference optimizer takes the float32-rounded clipped grads, as the device does
      refStep(ref, new Map([...clipped].map(([n, t]) => [n, f64(t)])), 0.01);
    }
    expect(tf.memory().numTensors).toBe(before + 2 * TRAINABLE.length);
    await checkAgainstRef(opt, ref, 3, 0.01);
    const g = backend.createParams(randomGrads(rng, 1));
    const snapshot = await backend.readParams(g);
    await gradNorm(backend, g);
    const after = await backend.readParams(g);
    for (const name of TRAINABLE) expect(after.get(name)?.data).toEqual(snapshot.get(name)?.data);
    backend.disposeParams(g);
    opt.dispose();
    backend.disposeParams(params);
  });
});
