import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createTfjsBackend } from '@qf/backends/tfjs';
import { loadQFormerFromDir } from '@qf/core/node';
import { type HostTensor, parseModelConfig } from '@qf/io';
import { openSafetensors } from '@qf/io/node';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectClose, qf, readAll, tempDir } from './helpers.js';

const BATCH = 3;
const BATCHES = 2;
const PAIRS = BATCH * BATCHES;

let out: string;
let stdout: string;

beforeAll(async () => {
  out = join(await tempDir(), 'demo');
  const r = await qf(
    'demo',
    '--out',
    out,
    '--batch',
    String(BATCH),
    '--batches',
    String(BATCHES),
    '--seed',
    '5',
  );
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  stdout = r.stdout;
});

describe('qf demo', () => {
  it('says what it is and where the files went', () => {
    expect(stdout).toContain('randomly initialised BLIP-2-style Q-Former');
    expect(stdout).toContain('`shapes` recipe');
    expect(stdout).toContain(join(out, 'model'));
    expect(stdout).toContain(join(out, 'features.safetensors'));
    expect(stdout).toMatch(/time\s+init .* total/);
  });

  it('writes an HF Blip2Config config.json', async () => {
    const json = JSON.parse(await readFile(join(out, 'model', 'config.json'), 'utf8'));
    expect(json.model_type).toBe('blip-2');
    expect(json.num_query_tokens).toBe(16);
    expect(json.qformer_config).toMatchObject({
      model_type: 'blip_2_qformer',
      hidden_size: 128,
      num_attention_heads: 4,
      num_hidden_layers: 4,
      encoder_hidden_size: 96,
      use_qformer_text_input: true,
    });
    expect(json.vision_config).toMatchObject({ model_type: 'blip_2_vision_model', hidden_size: 96 });
    expect(json.text_config).toMatchObject({ model_type: 'opt', hidden_size: 160 });
    const parsed = parseModelConfig(json);
    expect(parsed.modelType).toBe('blip-2');
    const weights = await openSafetensors(join(out, 'model', 'model.safetensors'));
    expect(weights.metadata['format']).toBe('pt');
    expect(weights.names()).toContain('qformer.encoder.layer.2.crossattention.attention.key.weight');
    expect(weights.info('qformer.encoder.layer.2.crossattention.attention.key.weight')?.shape).toEqual([
      128, 96,
    ]);
    await weights.close();
  });

  it('its model dir loads again, strictly, with every part', async () => {
    const backend = await createTfjsBackend('cpu');
    const model = await loadQFormerFromDir(backend, join(out, 'model'), { strict: true });
    try {
      expect(model.spec.numQueryTokens).toBe(16);
      expect(model.spec.textPath).toBe(true);
      expect(model.spec.retrievalHeads?.imageTextHiddenSize).toBe(64);
      expect(model.spec.languageProjection?.outFeatures).toBe(160);
      expect(model.ignored).toEqual([]);
    } finally {
      model.dispose();
    }
  });

  it('writes features.safetensors with the expected tensors', async () => {
    const f = await readAll(join(out, 'features.safetensors'));
    const shapes = Object.fromEntries(Object.entries(f).map(([k, v]) => [k, [...v.shape]]));
    expect(shapes).toEqual({
      query_output: [PAIRS, 16, 128],
      image_feats: [PAIRS, 16, 64],
      language_projection: [PAIRS, 16, 160],
      text_feat: [PAIRS, 64],
      itm_logits: [PAIRS, 2],
      itc_logits: [BATCHES, BATCH, BATCH],
    });
    for (const t of Object.values(f)) {
      expect(t.dtype).toBe('F32');
      expect((t.data as Float32Array).every(Number.isFinite)).toBe(true);
    }
  });

  it('its inputs.safetensors reproduces the features through qf run', async () => {
    const features = await readAll(join(out, 'features.safetensors'));
    const runOut = join(out, 'run.safetensors');
    const r = await qf(
      'run',
      join(out, 'model'),
      '--inputs',
      join(out, 'inputs.safetensors'),
      '--out',
      runOut,
      '--strict',
    );
    expect(r.code, r.stderr).toBe(0);
    const got = await readAll(runOut);
    for (const k of ['query_output', 'image_feats', 'language_projection', 'text_feat', 'itm_logits']) {
      expectClose(k, got[k], features[k], 1e-5);
    }
    // Demo ITC is per batch: the diagonal blocks of the full [PAIRS, PAIRS] matrix.
    const full = got['itc_logits']!.data as Float32Array;
    const blocks = features['itc_logits']!.data as Float32Array;
    for (let b = 0; b < BATCHES; b++)
      for (let i = 0; i < BATCH; i++)
        for (let j = 0; j < BATCH; j++) {
          const a = full[(b * BATCH + i) * PAIRS + b * BATCH + j]!;
          expect(Math.abs(a - blocks[(b * BATCH + i) * BATCH + j]!)).toBeLessThan(1e-5);
        }
  });

  it('is deterministic for a seed and differs across seeds', async () => {
    const dir = await tempDir();
    const again = join(dir, 'again');
    const other = join(dir, 'other');
    expect(
      (await qf('demo', '-o', again, '--batch', String(BATCH), '--batches', String(BATCHES), '--seed', '5'))
        .code,
    ).toBe(0);
    expect(
      (await qf('demo', '-o', other, '--batch', String(BATCH), '--batches', '1', '--seed', '6')).code,
    ).toBe(0);
    const a = await readAll(join(out, 'features.safetensors'));
    const b = await readAll(join(again, 'features.safetensors'));
    for (const k of Object.keys(a))
      expect(Buffer.from((b[k] as HostTensor).data.buffer)).toEqual(
        Buffer.from((a[k] as HostTensor).data.buffer),
      );
    const c = await readAll(join(other, 'inputs.safetensors'));
    const x = await readAll(join(out, 'inputs.safetensors'));
    expect((c['image_embeds']!.data as Float32Array)[0]).not.toBe(
      (x['image_embeds']!.data as Float32Array)[0],
    );
  });
});

describe('qf demo --backend onnx', () => {
  it('runs on ONNX Runtime and matches the tfjs-cpu features of the same seed', async () => {
    const onnxOut = join(await tempDir(), 'demo-onnx');
    const r = await qf(
      'demo',
      '--out',
      onnxOut,
      '--batch',
      String(BATCH),
      '--batches',
      String(BATCHES),
      '--seed',
      '5',
      '--backend',
      'onnx',
      '--threads',
      '1',
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/backend\s+onnx \(ONNX Runtime, 1 thread per operator\)/);
    const tfjs = await readAll(join(out, 'features.safetensors'));
    const onnx = await readAll(join(onnxOut, 'features.safetensors'));
    expect(Object.keys(onnx).sort()).toEqual(Object.keys(tfjs).sort());
    for (const k of Object.keys(tfjs)) expectClose(k, onnx[k], tfjs[k], 1e-4);
    const file = await openSafetensors(join(onnxOut, 'features.safetensors'));
    expect(file.metadata['backend']).toBe('onnx');
    await file.close();
  });
});
