import { readFile, readdir } from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTfjsBackend } from '@qf/backends/tfjs';
import { OptLanguageModel, loadTokenizer } from '@qf/bridge/node';
import { loadQFormerFromDir } from '@qf/core/node';
import { isBlip2Config, parseModelConfig } from '@qf/io';
import { openCheckpointDir } from '@qf/io/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DemoError } from '../src/errors.js';
import { conditionalGenerationLayout, fileLayout, imageTextRetrievalLayout } from './hf-layout.js';
import { resolveDemoOptions } from '../src/options.js';
import { type ShapesDemoResult, runShapesDemo } from '../src/run.js';

let dir: string;
let first: ShapesDemoResult;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'qf-demo-'));
  first = await runShapesDemo({ quick: true, seed: 4, out: join(dir, 'a') });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('runShapesDemo --quick', () => {
  it('reports every figure in [0, 1] over the test candidates', () => {
    const f = first.figures;
    expect(f.candidates).toBe(48);
    for (const x of [
      f.itc.i2t.r1,
      f.itc.i2t.r5,
      f.itc.t2i.r1,
      f.itm.i2t.r1,
      f.itm.t2i.r5,
      f.caption.exactMatch,
      f.caption.tokenAccuracy,
    ]) {
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThanOrEqual(1);
    }
    expect(f.itc.i2t.r5).toBeGreaterThanOrEqual(f.itc.i2t.r1);
    expect(first.samples).toHaveLength(3);
    expect(first.timings.stage1.stepsPerSecond).toBeGreaterThan(0);
  });

  it('is deterministic for a seed (same figures, samples and weights)', async () => {
    const again = await runShapesDemo({ quick: true, seed: 4, out: join(dir, 'b') });
    expect(again.figures).toEqual(first.figures);
    expect(again.samples).toEqual(first.samples);
    expect(again.finalLoss).toEqual(first.finalLoss);
    const a = await readFile(join(dir, 'a', 'model.safetensors'));
    const b = await readFile(join(dir, 'b', 'model.safetensors'));
    expect(b.equals(a)).toBe(true);
  });

  it('writes an HF BLIP-2 directory that loads back (Q-Former, OPT, tokenizers)', async () => {
    const out = join(dir, 'a');
    const files = (await readdir(out)).sort();
    expect(files).toEqual(
      expect.arrayContaining([
        'config.json',
        'model.safetensors',
        'tokenizer.json',
        'tokenizer_config.json',
        'qformer_tokenizer',
        'demo.json',
        'preprocessor_config.json',
        'samples',
      ]),
    );
    expect(files.some((f) => f.includes('staging'))).toBe(false);
    const backend = await createTfjsBackend('cpu');
    const model = await loadQFormerFromDir(backend, out);
    try {
      expect(model.spec.textPath).toBe(true);
      expect(model.spec.retrievalHeads).toBeDefined();
      expect(model.spec.languageProjection?.outFeatures).toBe(64);
      // Everything the Q-Former does not read is the frozen encoder, the frozen LM, or stage-1 extras.
      expect(
        model.ignored.filter((n) => !/^(vision_model\.|language_model\.|temp$|Qformer\.cls\.)/.test(n)),
      ).toEqual([]);
      expect(model.ignored.some((n) => n.startsWith('vision_model.'))).toBe(true);
    } finally {
      model.dispose();
    }
    const { config, checkpoint } = await openCheckpointDir(out);
    const parsed = parseModelConfig(config);
    expect(isBlip2Config(parsed) && parsed.modelType).toBe('blip-2');
    if (!isBlip2Config(parsed) || !parsed.text) throw new Error('no text_config');
    const lm = OptLanguageModel.fromTextConfig(parsed.text.raw);
    const loaded = await lm.loadTensors(checkpoint);
    expect(loaded.tensors.size).toBe(lm.paramSpecs().length);
    expect(checkpoint.names()).toContain('query_tokens');
    expect(checkpoint.names()).toContain('itm_head.weight');
    expect(checkpoint.names()).toContain('temp');
    await checkpoint.close();
    const tok = await loadTokenizer(out);
    const qtok = await loadTokenizer(out, 'qformer_tokenizer');
    expect(tok).toBeDefined();
    expect(qtok).toBeDefined();
    const demo = JSON.parse(await readFile(join(out, 'demo.json'), 'utf8'));
    expect(demo.figures).toEqual(first.figures);
  });

  it('saves every tensor of Blip2ForConditionalGeneration and Blip2ForImageTextRetrieval by HF name and shape', async () => {
    const out = join(dir, 'a');
    const config = JSON.parse(await readFile(join(out, 'config.json'), 'utf8'));
    const saved = await fileLayout(join(out, 'model.safetensors'));
    const conditional = conditionalGenerationLayout(config);
    const retrieval = imageTextRetrievalLayout(config);
    for (const layout of [conditional, retrieval])
      for (const [name, shape] of layout) expect([name, saved.get(name)]).toEqual([name, shape]);
    // Nothing else but LAVIS's stage-1 extras (temperature, ITG head), which HF ignores on load.
    const extra = [...saved.keys()].filter((n) => !conditional.has(n) && !retrieval.has(n));
    expect(extra.length).toBeGreaterThan(0);
    expect(extra.filter((n) => n !== 'temp' && !n.startsWith('Qformer.cls.'))).toEqual([]);
  });

  it('captions its sample images through loadBlip2FromDir as the evaluation did', async () => {
    const bridge = (await import('@qf/bridge/node')) as Record<string, unknown>;
    type Loaded = {
      model: { caption(images: unknown[], o: unknown): Promise<string[]>; dispose(): void };
      tokenizer: unknown;
    };
    const load = bridge['loadBlip2FromDir'] as ((b: unknown, d: string) => Promise<Loaded>) | undefined;
    if (typeof load !== 'function') return; // not in this checkout yet
    const { decodeImageFile } = await import('@qf/io/node');
    const out = join(dir, 'a');
    const list = JSON.parse(await readFile(join(out, 'samples', 'samples.json'), 'utf8')) as {
      file: string;
      caption: string;
    }[];
    expect(list.slice(0, 3).map((s) => s.caption)).toEqual(first.samples.map((s) => s.reference));
    const images = await Promise.all(
      list.slice(0, 3).map((s) => decodeImageFile(join(out, 'samples', s.file))),
    );
    const backend = await createTfjsBackend('cpu');
    const { model, tokenizer } = await load(backend, out);
    try {
      const captions = await model.caption(images, { tokenizer, maxNewTokens: 11 });
      expect(captions.map((c) => c.trim())).toEqual(first.samples.map((s) => s.generated));
    } finally {
      model.dispose();
    }
  });
});

describe('options', () => {
  it('rejects bad values with DemoError DEMO_OPTIONS', () => {
    expect(() => resolveDemoOptions({ seed: -1 })).toThrow(DemoError);
    expect(() => resolveDemoOptions({ stage1: { batch: 1 } })).toThrow(/stage1.batch/);
    expect(() => resolveDemoOptions({ backend: 'onnx' as never })).toThrow(/backend/);
    expect(resolveDemoOptions({ quick: true, stage2: { steps: 3 } }).stage2).toMatchObject({
      steps: 3,
      batch: 16,
    });
  });
});
