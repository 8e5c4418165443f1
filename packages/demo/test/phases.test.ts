import { OptLanguageModel } from '@qf/bridge';
import { createTfjsBackend } from '@qf/backends/tfjs';
import { type TrainingBackend, requireTraining } from '@qf/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { demoConfig, demoConfigJson } from '../src/config.js';
import { type DemoData, demoData } from '../src/data.js';
import { encodeImages, initEncoder, pretrainEncoder } from '../src/encoder.js';
import { initLm, lmPerplexity, pretrainLm } from '../src/lm.js';
import { tailMean } from '../src/loop.js';
import { silentReporter } from '../src/report.js';

let backend: TrainingBackend<unknown>;
let data: DemoData;
const config = demoConfig();

beforeAll(async () => {
  backend = requireTraining((await createTfjsBackend('wasm')) as unknown as TrainingBackend<unknown>);
  data = demoData(1, { train: 256, validation: 64, test: 16 }, 32, 8);
});

describe('image encoder pre-training', () => {
  it('lowers the auxiliary loss; the frozen features have the vision tower shape', async () => {
    const params = backend.createParams(initEncoder(config.vision, 5));
    try {
      const run = await pretrainEncoder(
        backend,
        config.vision,
        params,
        data.train,
        { steps: 60, batch: 16, lr: 3e-3, seed: 2 },
        silentReporter,
      );
      expect(run.losses).toHaveLength(60);
      expect(tailMean(run.losses, 10)).toBeLessThan(
        0.75 * (run.losses.slice(0, 5).reduce((a, b) => a + b) / 5),
      );
      const f = await encodeImages(backend, config.vision, params, data.test);
      expect(f.shape).toEqual([16, 17, config.vision.hiddenSize]);
    } finally {
      backend.disposeParams(params);
    }
  });
});

describe('LM pre-training', () => {
  it('lowers the caption perplexity on held-out captions', async () => {
    const lm = OptLanguageModel.fromTextConfig(demoConfigJson()['text_config']);
    const params = backend.createParams(initLm(lm, 7));
    try {
      const before = await lmPerplexity(backend, lm, params, data.validation, 8);
      await pretrainLm(
        backend,
        lm,
        params,
        data.train,
        { steps: 60, batch: 32, lr: 3e-3, seed: 3, maxOffset: 8 },
        silentReporter,
      );
      const after = await lmPerplexity(backend, lm, params, data.validation, 8);
      expect(before).toBeGreaterThan(10); // ~uniform over 20 tokens at init
      expect(after).toBeLessThan(before / 2);
    } finally {
      backend.disposeParams(params);
    }
  });
});
