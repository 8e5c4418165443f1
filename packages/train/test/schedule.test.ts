import { describe, expect, it } from 'vitest';
import { TrainError, constantLr, lavisWarmupCosine, scheduleFromSpec, warmupCosine } from '../src/index.js';

/**
 * LAVIS's runner, transliterated: `LinearWarmupCosineLRScheduler.step(cur_epoch, cur_step)` is called
 * before every iteration `i` of every epoch (`base_task._train_inner_loop`), and the lr it sets is the
 * one the optimizer step of that iteration uses. Returns the lr of every global step.
 */
function lavisRun(o: {
  maxEpoch: number;
  itersPerEpoch: number;
  initLr: number;
  minLr: number;
  warmupSteps: number;
  warmupStartLr: number; // -1: init_lr
}): number[] {
  const group = { lr: Number.NaN };
  const warmupStart = o.warmupStartLr >= 0 ? o.warmupStartLr : o.initLr;
  const step = (curEpoch: number, curStep: number) => {
    if (curEpoch === 0) {
      group.lr = Math.min(
        o.initLr,
        warmupStart + ((o.initLr - warmupStart) * curStep) / Math.max(o.warmupSteps, 1),
      );
    } else {
      group.lr = (o.initLr - o.minLr) * 0.5 * (1.0 + Math.cos((Math.PI * curEpoch) / o.maxEpoch)) + o.minLr;
    }
  };
  const lrs: number[] = [];
  for (let epoch = 0; epoch < o.maxEpoch; epoch++) {
    for (let i = 0; i < o.itersPerEpoch; i++) {
      step(epoch, i);
      lrs.push(group.lr);
    }
  }
  return lrs;
}

describe('schedules', () => {
  it('lavis-warmup-cosine equals LAVIS at every step (warm-up, boundaries, epochs)', () => {
    for (const o of [
      // BLIP-2 stage-1 config shape: warm-up from 1e-6 to 1e-4 over 5 iters, min 1e-5
      { maxEpoch: 4, itersPerEpoch: 8, initLr: 1e-4, minLr: 1e-5, warmupSteps: 5, warmupStartLr: 1e-6 },
      // warm-up longer than the first epoch: LAVIS never reaches init_lr in epoch 0
      { maxEpoch: 3, itersPerEpoch: 4, initLr: 3e-4, minLr: 0, warmupSteps: 10, warmupStartLr: 0 },
      // no warm-up, default start (-1)
      { maxEpoch: 5, itersPerEpoch: 2, initLr: 1e-3, minLr: 1e-4, warmupSteps: 0, warmupStartLr: -1 },
    ]) {
      const expected = lavisRun(o);
      const s = lavisWarmupCosine({
        initLr: o.initLr,
        minLr: o.minLr,
        warmupSteps: o.warmupSteps,
        ...(o.warmupStartLr >= 0 ? { warmupStartLr: o.warmupStartLr } : {}),
        maxEpoch: o.maxEpoch,
        stepsPerEpoch: o.itersPerEpoch,
      });
      expect(expected.map((_, k) => s.lr(k))).toEqual(expected);
    }
    // spot values at the boundaries, from the formulas by hand
    const s = lavisWarmupCosine({
      initLr: 1e-4,
      minLr: 1e-5,
      warmupSteps: 5,
      warmupStartLr: 1e-6,
      maxEpoch: 4,
      stepsPerEpoch: 8,
    });
    expect(s.lr(0)).toBe(1e-6); // first step: the warm-up start
    expect(s.lr(5)).toBeCloseTo(1e-4, 18); // warm-up done (1e-6 + 9.9e-5 rounds just below 1e-4, in LAVIS too)
    expect(s.lr(7)).toBe(1e-4); // rest of epoch 0 at the peak (the min() caps it)
    expect(s.lr(8)).toBeCloseTo(1e-5 + 0.5 * 9e-5 * (1 + Math.SQRT1_2), 15); // epoch 1 of 4
    expect(s.lr(16)).toBeCloseTo(5.5e-5, 15); // epoch 2: half way
    expect(s.spec.kind).toBe('lavis-warmup-cosine');
  });

  it('warmup-cosine: LAVIS warm-up, then a per-step cosine from initLr to minLr', () => {
    const s = warmupCosine({ initLr: 1e-3, minLr: 1e-5, warmupSteps: 4, warmupStartLr: 0, totalSteps: 20 });
    expect(s.lr(0)).toBe(0);
    expect(s.lr(2)).toBe(5e-4);
    expect(s.lr(4)).toBe(1e-3);
    expect(s.lr(12)).toBeCloseTo((1e-3 + 1e-5) / 2, 15);
    expect(s.lr(20)).toBeCloseTo(1e-5, 18);
    expect(s.lr(25)).toBeCloseTo(1e-5, 18); // held at the minimum past the end
    for (let k = 5; k < 20; k++) expect(s.lr(k)).toBeLessThan(s.lr(k - 1));
    const noWarmup = warmupCosine({ initLr: 2, totalSteps: 4 });
    expect([0, 1, 2, 3, 4].map((k) => noWarmup.lr(k))).toEqual(
      [0, 1, 2, 3, 4].map((k) => 0.5 * 2 * (1 + Math.cos((Math.PI * k) / 4))),
    );
  });

  it('constant, round trip through the JSON spec, typed errors', () => {
    expect(constantLr(3e-4).lr(1000)).toBe(3e-4);
    const s = warmupCosine({ initLr: 1e-3, minLr: 1e-5, warmupSteps: 4, totalSteps: 20 });
    const back = scheduleFromSpec(JSON.parse(JSON.stringify(s.spec)));
    for (let k = 0; k < 22; k++) expect(back.lr(k)).toBe(s.lr(k));
    const bad = [
      () => constantLr(-1),
      () => warmupCosine({ initLr: 1, warmupSteps: 5, totalSteps: 5 }),
      () => lavisWarmupCosine({ initLr: 1, maxEpoch: 0, stepsPerEpoch: 1 }),
      () => scheduleFromSpec({ kind: 'step' } as never),
      () => s.lr(-1),
      () => s.lr(1.5),
    ];
    for (const f of bad) expect(f).toThrow(TrainError);
  });
});
