import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { HostTensor } from '@qf/io';
import { beforeAll, describe, expect, it } from 'vitest';
import { goldenDir, publicSmall, qf, readAll, requireDir, tempDir, writeInputs } from './helpers.js';

const modelDir = join(requireDir(publicSmall), 'hf');
let inputs: Record<string, HostTensor>;
let dir: string;

beforeAll(async () => {
  inputs = await readAll(join(publicSmall, 'inputs.safetensors'));
  dir = await tempDir();
});

/** Runs `qf run` on the golden model with `tensors` as inputs; expects failure and no output file. */
async function runFails(label: string, tensors: Record<string, HostTensor | undefined>) {
  const path = await writeInputs(dir, `${label}.safetensors`, tensors);
  const out = join(dir, `${label}-out.safetensors`);
  const r = await qf('run', modelDir, '--inputs', path, '--out', out);
  expect(r.code).toBe(1);
  expect(existsSync(out)).toBe(false);
  expect(r.stdout).toBe('');
  return r.stderr;
}

describe('qf run input errors (exit 1, typed message on stderr, no output file)', () => {
  it('unknown input name', async () => {
    const err = await runFails('unknown', { ...inputs, pixel_values: inputs['image_embeds'] });
    expect(err).toContain('TENSOR_UNEXPECTED');
    expect(err).toContain('"pixel_values"');
    expect(err).toContain('image_embeds, image_attention_mask, input_ids, attention_mask');
  });

  it('wrong dtype: F32 input_ids', async () => {
    const ids = inputs['input_ids']!;
    const f32: HostTensor = {
      dtype: 'F32',
      shape: ids.shape,
      data: Float32Array.from(ids.data as BigInt64Array, Number),
    };
    const err = await runFails('f32-ids', { ...inputs, input_ids: f32 });
    expect(err).toMatch(/^error \[TENSOR_DTYPE\]: tensor "input_ids": .*expected I64 \| I32, got F32/);
  });

  it('wrong shape: image_embeds width', async () => {
    const narrow: HostTensor = { dtype: 'F32', shape: [2, 17, 40], data: new Float32Array(2 * 17 * 40) };
    const err = await runFails('narrow', { ...inputs, image_embeds: narrow });
    expect(err).toContain('error [TENSOR_SHAPE]: tensor "image_embeds"');
    expect(err).toContain('expected [B, N, 48], got [2, 17, 40]');
  });

  it('wrong shape: attention_mask does not match input_ids', async () => {
    const mask: HostTensor = { dtype: 'I64', shape: [2, 6], data: new BigInt64Array(12).fill(1n) };
    const err = await runFails('mask', { ...inputs, attention_mask: mask });
    expect(err).toContain('tensor "attention_mask"');
    expect(err).toContain('got [2, 6]');
  });

  it('token id out of the vocabulary', async () => {
    const ids: HostTensor = { dtype: 'I64', shape: [2, 7], data: new BigInt64Array(14).fill(100n) };
    const err = await runFails('oov', { ...inputs, input_ids: ids });
    expect(err).toContain('tensor "input_ids": token id out of range');
  });

  it('keeps an existing output file untouched on failure', async () => {
    const out = join(dir, 'existing.safetensors');
    await writeFile(out, 'previous');
    const bad = await writeInputs(dir, 'bad-existing.safetensors', {
      ...inputs,
      pixel_values: inputs['image_embeds'],
    });
    expect((await qf('run', modelDir, '-i', bad, '-o', out)).code).toBe(1);
    expect(await readFile(out, 'utf8')).toBe('previous');
  });
});

describe('qf run file errors', () => {
  it('missing model directory', async () => {
    const out = join(dir, 'never.safetensors');
    const r = await qf(
      'run',
      join(dir, 'no-such-model'),
      '-i',
      join(publicSmall, 'inputs.safetensors'),
      '-o',
      out,
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('error [CLI_NOT_FOUND]: model directory not found:');
    expect(r.stderr).toContain('no-such-model');
    expect(existsSync(out)).toBe(false);
  });

  it('missing inputs file', async () => {
    const r = await qf(
      'run',
      modelDir,
      '-i',
      join(dir, 'nope.safetensors'),
      '-o',
      join(dir, 'never.safetensors'),
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('inputs file not found:');
    expect(r.stderr).toContain('nope.safetensors');
  });

  it('a directory without config.json', async () => {
    const empty = await tempDir();
    const r = await qf(
      'run',
      empty,
      '-i',
      join(publicSmall, 'inputs.safetensors'),
      '-o',
      join(dir, 'never.safetensors'),
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('CHECKPOINT_NO_CONFIG');
  });

  it('a corrupt inputs file', async () => {
    const bad = join(dir, 'corrupt.safetensors');
    await writeFile(bad, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3]));
    const r = await qf('run', modelDir, '-i', bad, '-o', join(dir, 'never.safetensors'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error \[SAFETENSORS_[A-Z_]+\]/);
  });

  it('--strict fails on tensors the Q-Former does not use', async () => {
    const stage1 = join(goldenDir, 'stage1_losses');
    const stage1Inputs = await readAll(join(stage1, 'inputs.safetensors'));
    const path = await writeInputs(dir, 'stage1.safetensors', {
      image_embeds: stage1Inputs['plain.image_embeds'],
    });
    const out = join(dir, 'stage1-out.safetensors');
    const loose = await qf(
      'run',
      join(stage1, 'hf'),
      '-i',
      path,
      '-o',
      join(dir, 'stage1-loose.safetensors'),
    );
    expect(loose.code, loose.stderr).toBe(0);
    expect(loose.stderr).toContain('not used by the Q-Former');
    const strict = await qf('run', join(stage1, 'hf'), '-i', path, '-o', out, '--strict');
    expect(strict.code).toBe(1);
    expect(strict.stderr).toContain('TENSOR_UNEXPECTED');
    expect(existsSync(out)).toBe(false);
  });
});

describe('usage errors', () => {
  it('unknown backend', async () => {
    const r = await qf('run', modelDir, '-i', 'x', '-o', 'y', '--backend', 'gpu');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("'gpu' is invalid");
  });

  it('missing required option', async () => {
    const r = await qf('run', modelDir, '-o', 'y');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('--inputs');
  });

  it('unknown command', async () => {
    const r = await qf('frobnicate');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("unknown command 'frobnicate'");
  });

  it('bad integer option', async () => {
    const r = await qf('demo', '--batch', 'many');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('expected an integer');
  });
});
