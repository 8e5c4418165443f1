import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeCheckpointDir } from '@qf/io/node';
import { describe, expect, it } from 'vitest';
import type { ConfigReport, ModelDirReport, SafetensorsReport } from '../src/inspect.js';
import { expectClose, goldenDir, publicSmall, qf, readAll, requireDir, tempDir } from './helpers.js';

requireDir(publicSmall);

describe('qf inspect on a safetensors file', () => {
  it('lists tensors and metadata', async () => {
    const r = await qf('inspect', join(publicSmall, 'inputs.safetensors'));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('safetensors, 4 tensors');
    expect(r.stdout).toMatch(/input_ids\s+I64\s+\[2, 7\]\s+112/);
    expect(r.stdout).toMatch(/image_embeds\s+F32\s+\[2, 17, 48\]\s+6,528/);
    expect(r.stdout).toMatch(/case\s+public_small/);
  });

  it('--json parses and carries every field', async () => {
    const r = await qf('inspect', join(publicSmall, 'inputs.safetensors'), '--json');
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as SafetensorsReport;
    expect(report.kind).toBe('safetensors');
    expect(report.metadata['case']).toBe('public_small');
    expect(report.tensors.find((t) => t.name === 'input_ids')).toEqual({
      name: 'input_ids',
      dtype: 'I64',
      shape: [2, 7],
      bytes: 112,
    });
    expect(report.tensorBytes).toBe(report.tensors.reduce((n, t) => n + t.bytes, 0));
    expect(report.fileBytes).toBeGreaterThan(report.tensorBytes);
  });
});

describe('qf inspect on a model directory', () => {
  it('shows the parsed config, layout and parts', async () => {
    const r = await qf('inspect', join(publicSmall, 'hf'));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/model type\s+blip-2/);
    expect(r.stdout).toContain('hidden 64, 4 layers, 4 heads');
    expect(r.stdout).toMatch(/queries\s+8/);
    expect(r.stdout).toContain('every 2 layer(s), encoder width 48');
    expect(r.stdout).toMatch(/layout\s+hf-blip2/);
    expect(r.stdout).toContain('text model           opt, hidden 24, decoder-only');
    expect(r.stdout).toContain('qformer.encoder.layer.0.crossattention.attention.key.weight');
  });

  it('--json', async () => {
    const r = await qf('inspect', join(publicSmall, 'hf'), '--json');
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as ModelDirReport;
    expect(report.kind).toBe('model-dir');
    expect(report.layout).toBe('hf-blip2');
    expect(report.weights).toEqual({ format: 'single', files: ['model.safetensors'] });
    expect(report.config.modelType).toBe('blip-2');
    expect(report.config.numQueryTokens).toBe(8);
    expect(report.config.qformer).toMatchObject({
      hiddenSize: 64,
      numHiddenLayers: 4,
      numAttentionHeads: 4,
      crossAttentionFrequency: 2,
      encoderHiddenSize: 48,
    });
    expect(report.config.imageTextHiddenSize).toBe(32);
    expect(report.config.vision).toMatchObject({ hiddenSize: 48, imageSize: 8, patchSize: 4, tokens: 5 });
    expect(report.config.text).toEqual({ modelType: 'opt', hiddenSize: 24, decoderOnly: true });
    expect(report.parts).toEqual({
      queryTokens: true,
      textPath: true,
      retrievalHeads: true,
      languageProjection: true,
      visionTower: false,
      languageModel: false,
      unmapped: 0,
    });
    expect(report.tensors).toHaveLength(121);
  });

  it('detects InstructBLIP and LAVIS layouts', async () => {
    const instruct = await qf('inspect', join(goldenDir, 'instructblip_tiny', 'hf'), '--json');
    expect(instruct.code, instruct.stderr).toBe(0);
    const ib = JSON.parse(instruct.stdout) as ModelDirReport;
    expect(ib.layout).toBe('hf-instructblip');
    expect(ib.config.modelType).toBe('instructblip');
    expect(ib.parts.textPath).toBe(true);

    const lavisDir = await tempDir();
    await copyFile(join(goldenDir, 'stage1_losses', 'hf', 'config.json'), join(lavisDir, 'config.json'));
    await copyFile(
      join(goldenDir, 'stage1_losses', 'weights_lavis.safetensors'),
      join(lavisDir, 'model.safetensors'),
    );
    const lavis = await qf('inspect', lavisDir, '--json');
    expect(lavis.code, lavis.stderr).toBe(0);
    const lv = JSON.parse(lavis.stdout) as ModelDirReport;
    expect(lv.layout).toBe('lavis');
    expect(lv.parts).toMatchObject({ queryTokens: true, textPath: true, retrievalHeads: true });
  });

  it('a sharded checkpoint (and qf run reads it)', async () => {
    const dir = join(await tempDir(), 'sharded');
    const config = JSON.parse(await readFile(join(publicSmall, 'hf', 'config.json'), 'utf8'));
    await writeCheckpointDir(dir, {
      config,
      tensors: await readAll(join(publicSmall, 'hf', 'model.safetensors')),
      maxShardBytes: 400_000,
    });
    const r = await qf('inspect', dir, '--json');
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as ModelDirReport;
    expect(report.weights.format).toBe('sharded');
    expect(report.weights.files[0]).toBe('model.safetensors.index.json');
    expect(report.weights.files.length).toBeGreaterThanOrEqual(3);
    expect(report.metadata['total_size']).toBe(report.tensorBytes);
    expect(report.tensors).toHaveLength(121);
    const text = await qf('inspect', dir);
    expect(text.stdout).toContain('model-00001-of-');

    const out = join(dir, 'out.safetensors');
    const run = await qf('run', dir, '-i', join(publicSmall, 'inputs.safetensors'), '-o', out);
    expect(run.code, run.stderr).toBe(0);
    const expected = await readAll(join(publicSmall, 'outputs.safetensors'));
    expectClose(
      'query_output',
      (await readAll(out))['query_output'],
      expected['query_only_masked_image.last_hidden_state'],
    );
  });

  it('a config.json file', async () => {
    const r = await qf('inspect', join(publicSmall, 'config.json'), '--json');
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as ConfigReport;
    expect(report.kind).toBe('config');
    expect(report.config.modelType).toBe('blip_2_qformer');
    expect(report.config.languageProjectionOutFeatures).toBe(24);
  });
});

describe('qf inspect errors (exit 1, typed error with code)', () => {
  it('a truncated safetensors file', async () => {
    const dir = await tempDir();
    const bad = join(dir, 'truncated.safetensors');
    const header = Buffer.from('{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    await writeFile(bad, Buffer.concat([len, header, Buffer.alloc(4)]));
    const r = await qf('inspect', bad);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^error \[SAFETENSORS_[A-Z_]+\]: /);
  });

  it('a file that is not safetensors at all', async () => {
    const dir = await tempDir();
    const bad = join(dir, 'text.safetensors');
    await writeFile(bad, 'hello, this is not a safetensors file');
    const r = await qf('inspect', bad, '--json');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error \[SAFETENSORS_[A-Z_]+\]: /);
  });

  it('a bad config.json in a model directory', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'config.json'), JSON.stringify({ model_type: 'bert' }));
    await copyFile(join(publicSmall, 'inputs.safetensors'), join(dir, 'model.safetensors'));
    const r = await qf('inspect', dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('error [CONFIG_INVALID]: config field "model_type"');
  });

  it('a missing path', async () => {
    const r = await qf('inspect', '/definitely/not/here.safetensors');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      'error [CLI_NOT_FOUND]: no such file or directory: /definitely/not/here.safetensors',
    );
  });
});
