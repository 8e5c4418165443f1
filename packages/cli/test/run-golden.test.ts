import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { HostTensor } from '@qf/io';
import { openSafetensors } from '@qf/io/node';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  GOLDEN_NAMES,
  expectClose,
  publicSmall,
  qf,
  readAll,
  requireDir,
  writeInputs,
  goldenRunFixture,
} from './helpers.js';

const caseDir = requireDir(publicSmall);
const modelDir = join(caseDir, 'hf');

let inputs: Record<string, HostTensor>;
let expected: Record<string, HostTensor>;
let dir: string;
let unmaskedInputs: string;

beforeAll(async () => {
  ({ inputs, expected, dir, unmaskedInputs } = await goldenRunFixture());
});

for (const backend of ['tfjs-cpu', 'tfjs-wasm', 'onnx'] as const) {
  describe(`qf run on golden public_small (${backend})`, () => {
    it('writes every output and matches HF transformers (no image mask)', async () => {
      const out = join(dir, `${backend}-unmasked.safetensors`);
      const r = await qf('run', modelDir, '--inputs', unmaskedInputs, '--out', out, '--backend', backend);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      if (backend === 'onnx') expect(r.stdout).toContain('(onnx, 2 threads: load');
      else expect(tf.getBackend()).toBe(backend.slice('tfjs-'.length));
      const got = await readAll(out);
      expect(Object.keys(got).sort()).toEqual(Object.keys(GOLDEN_NAMES).sort());
      for (const [name, golden] of Object.entries(GOLDEN_NAMES)) {
        expect(got[name]?.dtype, name).toBe('F32');
        expectClose(`${name} vs ${golden}`, got[name], expected[golden]);
        expect(r.stdout).toContain(name);
      }
      expect(r.stdout).toContain('[2, 15, 64]');
      expect(r.stdout).toContain(out);
    });

    it('applies image_attention_mask (query_only_masked_image)', async () => {
      const out = join(dir, `${backend}-masked.safetensors`);
      const r = await qf(
        'run',
        modelDir,
        '--inputs',
        join(caseDir, 'inputs.safetensors'),
        '--out',
        out,
        '--backend',
        backend,
      );
      expect(r.code, r.stderr).toBe(0);
      const got = await readAll(out);
      expectClose(
        'query_output (masked image)',
        got['query_output'],
        expected['query_only_masked_image.last_hidden_state'],
      );
      expectClose('text_output', got['text_output'], expected['text_only.last_hidden_state']);
      expectClose('text_feat', got['text_feat'], expected['itc.text_embeds']);
    });
  });
}

describe('qf run --hidden-states', () => {
  it('adds every layer of every pass, matching HF', async () => {
    const out = join(dir, 'hidden.safetensors');
    const r = await qf('run', modelDir, '-i', unmaskedInputs, '-o', out, '--hidden-states');
    expect(r.code, r.stderr).toBe(0);
    const got = await readAll(out);
    for (let i = 0; i <= 4; i++) {
      expectClose(
        `query_hidden_states.${i}`,
        got[`query_hidden_states.${i}`],
        expected[`query_only.hidden_states.${i}`],
      );
      expectClose(
        `text_hidden_states.${i}`,
        got[`text_hidden_states.${i}`],
        expected[`text_only.hidden_states.${i}`],
      );
      expectClose(
        `multimodal_hidden_states.${i}`,
        got[`multimodal_hidden_states.${i}`],
        expected[`multimodal.hidden_states.${i}`],
      );
    }
  });

  it('runs image-only and text-only inputs and records provenance in the metadata', async () => {
    const imageOnly = await writeInputs(dir, 'image-only.safetensors', {
      image_embeds: inputs['image_embeds'],
    });
    const out = join(dir, 'image-only-out.safetensors');
    const r = await qf('run', modelDir, '-i', imageOnly, '-o', out);
    expect(r.code, r.stderr).toBe(0);
    const got = await readAll(out);
    expect(Object.keys(got).sort()).toEqual(['image_feats', 'language_projection', 'query_output']);
    expectClose('query_output', got['query_output'], expected['query_only.last_hidden_state']);
    const file = await openSafetensors(out);
    expect(file.metadata['producer']).toMatch(/^@qf\/cli .* qf run$/);
    expect(file.metadata['backend']).toBe('tfjs-cpu');
    await file.close();

    const textOnly = await writeInputs(dir, 'text-only.safetensors', {
      input_ids: inputs['input_ids'],
      attention_mask: inputs['attention_mask'],
    });
    const out2 = join(dir, 'text-only-out.safetensors');
    expect((await qf('run', modelDir, '-i', textOnly, '-o', out2)).code).toBe(0);
    const got2 = await readAll(out2);
    expect(Object.keys(got2).sort()).toEqual(['text_feat', 'text_output']);
    expectClose('text_output', got2['text_output'], expected['text_only.last_hidden_state']);
  });

  it('accepts I32 token ids', async () => {
    const toI32 = (t: HostTensor): HostTensor => ({
      dtype: 'I32',
      shape: t.shape,
      data: Int32Array.from(t.data as BigInt64Array, (v) => Number(v)),
    });
    const path = await writeInputs(dir, 'i32.safetensors', {
      image_embeds: inputs['image_embeds'],
      input_ids: toI32(inputs['input_ids']!),
      attention_mask: toI32(inputs['attention_mask']!),
    });
    const out = join(dir, 'i32-out.safetensors');
    const r = await qf('run', modelDir, '-i', path, '-o', out);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(out)).toBe(true);
    expectClose('itm_logits', (await readAll(out))['itm_logits'], expected['itm.logits_per_image']);
  });
});
