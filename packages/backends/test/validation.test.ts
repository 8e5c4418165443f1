import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { QFormerModel } from '@qf/core';
import { loadQFormerFromDir } from '@qf/core/node';
import { createTfjsBackend } from '@qf/backends/tfjs';
import { type HostTensor, TensorError } from '@qf/io';
import { writeSafetensorsFile } from '@qf/io/node';
import type * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { goldenDir, readAll } from './helpers.js';

const hfDir = join(goldenDir, 'public_small/hf');

describe('input validation names the tensor', () => {
  let model: QFormerModel<tf.Tensor>;
  let inputs: Record<string, HostTensor>;
  beforeAll(async () => {
    model = await loadQFormerFromDir(await createTfjsBackend('cpu'), hfDir);
    inputs = await readAll(join(goldenDir, 'public_small/inputs.safetensors'));
  });
  afterAll(() => model.dispose());

  const cases: [string, () => Record<string, HostTensor>, RegExp][] = [
    [
      'unknown name',
      () => ({ image_embeds: inputs['image_embeds']!, pixel_values: inputs['image_embeds']! }),
      /pixel_values.*unknown input/,
    ],
    [
      'wrong image width',
      () => ({ image_embeds: { dtype: 'F32', shape: [2, 17, 40], data: new Float32Array(2 * 17 * 40) } }),
      /image_embeds.*expected \[B, N, 48\], got \[2, 17, 40\]/,
    ],
    [
      'float ids',
      () => ({ input_ids: { dtype: 'F32', shape: [2, 7], data: new Float32Array(14) } }),
      /input_ids.*expected I64 \| I32, got F32/,
    ],
    [
      'mask shape',
      () => ({
        input_ids: inputs['input_ids']!,
        attention_mask: { dtype: 'I64', shape: [2, 6], data: new BigInt64Array(12) },
      }),
      /attention_mask.*expected \[2, 7\], got \[2, 6\]/,
    ],
    [
      'id out of range',
      () => ({ input_ids: { dtype: 'I32', shape: [1, 2], data: Int32Array.from([1, 100]) } }),
      /input_ids.*0\.\.99.*100/,
    ],
    [
      'non-binary mask',
      () => ({
        input_ids: inputs['input_ids']!,
        attention_mask: { dtype: 'I64', shape: [2, 7], data: new BigInt64Array(14).fill(2n) },
      }),
      /attention_mask.*0 or 1/,
    ],
    [
      'batch mismatch',
      () => ({
        image_embeds: inputs['image_embeds']!,
        input_ids: { dtype: 'I32', shape: [3, 2], data: new Int32Array(6) },
      }),
      /input_ids.*expected \[2, T\], got \[3, 2\]/,
    ],
    ['nothing to run', () => ({}), /image_embeds/],
  ];
  for (const [what, make, message] of cases) {
    it(what, async () => {
      const err = await model.run(make()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TensorError);
      expect((err as Error).message).toMatch(message);
    });
  }
});

describe('checkpoint errors name the tensor', () => {
  let dir: string;
  let weights: Record<string, HostTensor>;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qf-load-'));
    copyFileSync(join(hfDir, 'config.json'), join(dir, 'config.json'));
    weights = await readAll(join(hfDir, 'model.safetensors'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a missing tensor', async () => {
    const { ['qformer.encoder.layer.2.crossattention.attention.key.bias']: _gone, ...rest } = weights;
    await writeSafetensorsFile(join(dir, 'model.safetensors'), rest);
    const err = await loadQFormerFromDir(await createTfjsBackend('cpu'), dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TensorError);
    expect((err as TensorError).tensor).toBe('qformer.encoder.layer.2.crossattention.attention.key.bias');
  });

  it('a mis-shaped tensor', async () => {
    const bad: HostTensor = { dtype: 'F32', shape: [64, 40], data: new Float32Array(64 * 40) };
    await writeSafetensorsFile(join(dir, 'model.safetensors'), {
      ...weights,
      'qformer.encoder.layer.0.crossattention.attention.value.weight': bad,
    });
    const err = await loadQFormerFromDir(await createTfjsBackend('cpu'), dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TensorError);
    expect((err as Error).message).toMatch(
      /crossattention\.attention\.value\.weight.*expected \[64, 48\], got \[64, 40\]/,
    );
  });

  it('extra tensors are reported, and rejected when strict', async () => {
    const extra: HostTensor = { dtype: 'F32', shape: [2], data: new Float32Array(2) };
    await writeSafetensorsFile(join(dir, 'model.safetensors'), {
      ...weights,
      'vision_model.post_layernorm.bias': extra,
    });
    const backend = await createTfjsBackend('cpu');
    const model = await loadQFormerFromDir(backend, dir);
    expect(model.ignored).toEqual(['vision_model.post_layernorm.bias']);
    model.dispose();
    await expect(loadQFormerFromDir(backend, dir, { strict: true })).rejects.toThrow(
      /vision_model\.post_layernorm\.bias/,
    );
  });
});
