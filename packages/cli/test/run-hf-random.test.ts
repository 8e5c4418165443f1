import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CliBackendName } from '../src/backend.js';
import { expectClose, hfRandomDir, qf, readAll, requireDir, tempDir, writeInputs } from './helpers.js';

/**
 * `qf run` parity with HF transformers on the random configs of fixtures/hf-random (other sizes and
 * head counts, cross_attention_frequency 1/2/3, padded text and images; see its README).
 */
const cases = readdirSync(requireDir(hfRandomDir))
  .filter((d) => d.startsWith('random_'))
  .sort((a, b) => Number(a.slice(7)) - Number(b.slice(7)));

const crossAttentionFrequency = (name: string): number =>
  JSON.parse(readFileSync(join(hfRandomDir, name, 'meta.json'), 'utf8')).qformer.cross_attention_frequency;

/** For `--backend onnx`: the first case of each cross_attention_frequency (1, 2, 3). */
const onnxCases = [
  ...new Map(cases.map((c) => [crossAttentionFrequency(c), c] as const).reverse()).values(),
].sort((a, b) => Number(a.slice(7)) - Number(b.slice(7)));

/** Masked, unmasked and retrieval runs of one case through `qf run --backend <backend>`, checked against HF. */
async function checkCase(name: string, backend: CliBackendName): Promise<void> {
  const caseDir = join(hfRandomDir, name);
  const inputs = await readAll(join(caseDir, 'inputs.safetensors'));
  const expected = await readAll(join(caseDir, 'outputs.safetensors'));
  const dir = await tempDir();
  const text = { input_ids: inputs['input_ids'], attention_mask: inputs['attention_mask'] };
  const runWith = async (label: string, tensors: Parameters<typeof writeInputs>[2]) => {
    const path = await writeInputs(dir, `${label}-in.safetensors`, tensors);
    const out = join(dir, `${label}-out.safetensors`);
    const r = await qf('run', caseDir, '--inputs', path, '--out', out, '--backend', backend);
    expect(r.code, `${name} ${label}: ${r.stderr}`).toBe(0);
    return readAll(out);
  };

  const masked = await runWith('masked', {
    image_embeds: inputs['image_embeds'],
    image_attention_mask: inputs['image_attention_mask'],
    ...text,
  });
  expectClose(`${name} query_output`, masked['query_output'], expected['query_output']);
  expectClose(`${name} text_output`, masked['text_output'], expected['text_output']);
  // transformers 5.17 fails on a masked-image multimodal call for some cases (see meta.json "failed").
  if (expected['multimodal_output']) {
    expectClose(`${name} multimodal_output`, masked['multimodal_output'], expected['multimodal_output']);
  }

  const unmasked = await runWith('unmasked', { image_embeds: inputs['image_embeds'], ...text });
  expectClose(`${name} query_output_unmasked`, unmasked['query_output'], expected['query_output_unmasked']);
  expectClose(
    `${name} multimodal_output_unmasked_image`,
    unmasked['multimodal_output'],
    expected['multimodal_output_unmasked_image'],
  );

  const retrieval = await runWith('retrieval', { image_embeds: inputs['vision_image_embeds'], ...text });
  for (const k of ['itm_logits', 'itc_logits', 'image_feats', 'text_feat']) {
    expectClose(`${name} ${k}`, retrieval[k], expected[k]);
  }
}

describe('qf run on fixtures/hf-random (tfjs-cpu)', () => {
  it('has at least 3 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(3);
  });

  for (const name of cases) {
    it(`${name}: masked, unmasked and retrieval runs match HF`, () => checkCase(name, 'tfjs-cpu'));
  }
});

describe('qf run --backend onnx on fixtures/hf-random', () => {
  it('covers cross_attention_frequency 1, 2 and 3', () => {
    expect(onnxCases.map(crossAttentionFrequency).sort()).toEqual([1, 2, 3]);
  });

  for (const name of onnxCases) {
    it(`${name} (cross_attention_frequency ${crossAttentionFrequency(name)}): masked, unmasked and retrieval runs match HF`, () =>
      checkCase(name, 'onnx'));
  }
});
