import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { qf, readAll, tempDir } from './helpers.js';

let out: string;
let json: Record<string, unknown>;

beforeAll(async () => {
  out = join(await tempDir(), 'demo');
  const r = await qf('demo', '--quick', '--json', '--out', out, '--seed', '3');
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  // --json: stdout is exactly one JSON object.
  expect(r.stdout.trim().split('\n')).toHaveLength(1);
  json = JSON.parse(r.stdout);
});

describe('qf demo --quick --json', () => {
  it('prints the final figures, samples, steps/s and the checkpoint dir as one object', () => {
    expect(json['checkpointDir']).toBe(out);
    expect(json['recipe']).toBe('shapes');
    const f = json['figures'] as Record<string, Record<string, Record<string, number>>>;
    expect(Object.keys(f).sort()).toEqual(['candidates', 'caption', 'itc', 'itm', 'split']);
    for (const k of ['i2t', 't2i']) {
      expect(f['itc']?.[k]?.['r1']).toBeGreaterThanOrEqual(0);
      expect(f['itm']?.[k]?.['r5']).toBeLessThanOrEqual(1);
    }
    expect(f['caption']?.['exactMatch']).toBeGreaterThanOrEqual(0);
    // Each target next to the figure it is checked against.
    const targets = json['targets'] as Record<string, { target: number; value: number; met: boolean }>;
    expect(targets['itcImageToTextR1']?.value).toBe(f['itc']?.['i2t']?.['r1']);
    expect(targets['captionExactMatch']?.value).toBe(f['caption']?.['exactMatch']);
    for (const t of Object.values(targets)) expect(t.met).toBe(t.value >= t.target);
    const t = json['timings'] as Record<string, { stepsPerSecond?: number }>;
    for (const p of ['encoder', 'lm', 'stage1', 'stage2']) expect(t[p]?.stepsPerSecond).toBeGreaterThan(0);
    expect((json['samples'] as unknown[]).length).toBe(3);
  });

  it('writes the checkpoint directory with demo.json equal to the printed figures', async () => {
    const files = await readdir(out);
    for (const f of [
      'config.json',
      'model.safetensors',
      'tokenizer.json',
      'qformer_tokenizer',
      'demo.json',
      'samples',
    ])
      expect(files).toContain(f);
    const demo = JSON.parse(await readFile(join(out, 'demo.json'), 'utf8'));
    expect(demo.figures).toEqual(json['figures']);
    const config = JSON.parse(await readFile(join(out, 'config.json'), 'utf8'));
    expect(config.model_type).toBe('blip-2');
    expect(config.text_config.model_type).toBe('opt');
  });

  it('qf run reads the checkpoint with the sample inputs it wrote', async () => {
    const runOut = join(out, '..', 'run.safetensors');
    const r = await qf('run', out, '-i', join(out, 'samples', 'inputs.safetensors'), '-o', runOut);
    expect(r.code, r.stderr).toBe(0);
    const got = await readAll(runOut);
    expect(got['itm_logits']?.shape).toEqual([8, 2]);
    expect(got['language_projection']?.shape[0]).toBe(8);
  });
});

describe('qf caption on the demo checkpoint', () => {
  it('captions the sample PNGs as the demo evaluation did', async () => {
    const samples = JSON.parse(await readFile(join(out, 'samples', 'samples.json'), 'utf8')) as {
      file: string;
    }[];
    const files = samples.slice(0, 3).map((s) => join(out, 'samples', s.file));
    const r = await qf('caption', out, ...files, '--json', '--max-new-tokens', '11');
    expect(r.code, r.stderr).toBe(0);
    const captions = (JSON.parse(r.stdout) as { caption: string }[]).map((c) => c.caption.trim());
    const printed = (json['samples'] as { generated: string }[]).map((s) => s.generated);
    expect(captions).toEqual(printed);
  });
});

describe('qf demo', () => {
  it('prints a human report (figures table, samples, timings, next steps)', async () => {
    const dir = join(await tempDir(), 'human');
    const r = await qf(
      'demo',
      '--quick',
      '--out',
      dir,
      '--steps-stage1',
      '4',
      '--steps-stage2',
      '4',
      '--test-size',
      '24',
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('`shapes` recipe');
    expect(r.stdout).toMatch(/ITC \+ ITM re-rank \(top 5\)/);
    expect(r.stdout).toMatch(/exact match \d+\.\d%, token accuracy \d+\.\d%/);
    expect(r.stdout).toMatch(/stage 1\s+4 steps, [\d.]+ steps\/s/);
    expect(r.stdout).toMatch(
      /targets: ITC i2t R@1 \d+\.\d% \(target >= 90\.0%: (met|NOT met)\); caption exact match \d+\.\d% \(target >= 80\.0%: (met|NOT met)\)/,
    );
    expect(r.stdout).toContain(`qf caption ${dir}`);
    expect(r.stdout).toContain('24 images x 24 captions');
  });

  it('pre-trains the encoder on two threads from the built package (--workers 2)', async () => {
    const dir = join(await tempDir(), 'workers');
    const r = await qf('demo', '--quick', '--json', '--workers', '2', '--out', dir, '--steps-encoder', '6');
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.options.workers).toBe(2);
    expect(result.timings.encoder.steps).toBe(6);
    expect(Number.isFinite(result.finalLoss.encoder)).toBe(true);
  });

  it('rejects bad options', async () => {
    const bad = await qf('demo', '--quick', '--backend', 'onnx');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--backend/);
    const size = await qf('demo', '--quick', '--vision-hidden', '40', '--out', join(await tempDir(), 'x'));
    expect(size.code).toBe(1);
    expect(size.stderr).toContain('DEMO_OPTIONS');
    const workers = await qf('demo', '--quick', '--workers', '3');
    expect(workers.code).toBe(1);
    expect(workers.stderr).toMatch(/--workers/);
  });
});
