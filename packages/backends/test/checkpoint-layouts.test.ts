import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadQFormerFromDir } from '@qf/core/node';
import { createTfjsBackend } from '@qf/backends/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { expectClose, goldenDir, readAll } from './helpers.js';

/**
 * The Q-Former inside other checkpoint layouts, checked against the reference outputs those golden
 * cases hold (HF conditional generation, HF InstructBLIP, LAVIS stage-1 state dict).
 */
describe('Q-Former from other checkpoint layouts', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'qf-layouts-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('Blip2ForConditionalGeneration (OPT): query output and soft prompt', async () => {
    const dir = join(goldenDir, 'blip2_opt_tiny');
    const model = await loadQFormerFromDir(await createTfjsBackend('cpu'), join(dir, 'hf'));
    expect(model.spec.textPath).toBe(false);
    expect(model.spec.retrievalHeads).toBeUndefined();
    expect(model.ignored.some((n) => n.startsWith('language_model.'))).toBe(true);
    const expected = await readAll(join(dir, 'outputs.safetensors'));
    const out = await model.run(
      { image_embeds: expected['vision.last_hidden_state']! },
      { hiddenStates: true },
    );
    expectClose('qformer.last_hidden_state', out['query_output'], expected['qformer.last_hidden_state']);
    for (let i = 0; i <= 2; i++)
      expectClose(
        `qformer.hidden_states.${i}`,
        out[`query_hidden_states.${i}`],
        expected[`qformer.hidden_states.${i}`],
      );
    expectClose(
      'language_projection.output',
      out['language_projection'],
      expected['language_projection.output'],
    );
    model.dispose();
  });

  it('InstructBLIP: the Q-Former reading instruction text', async () => {
    const dir = join(goldenDir, 'instructblip_tiny');
    const model = await loadQFormerFromDir(await createTfjsBackend('cpu'), join(dir, 'hf'));
    expect(model.spec.textPath).toBe(true);
    const inputs = await readAll(join(dir, 'inputs.safetensors'));
    const expected = await readAll(join(dir, 'outputs.safetensors'));
    const out = await model.run(
      {
        image_embeds: expected['vision.last_hidden_state']!,
        input_ids: inputs['qformer_input_ids']!,
        attention_mask: inputs['qformer_attention_mask']!,
      },
      { hiddenStates: true },
    );
    expectClose('qformer.last_hidden_state', out['multimodal_output'], expected['qformer.last_hidden_state']);
    for (let i = 0; i <= 2; i++)
      expectClose(
        `qformer.hidden_states.${i}`,
        out[`multimodal_hidden_states.${i}`],
        expected[`qformer.hidden_states.${i}`],
      );
    model.dispose();
  });

  it('LAVIS stage-1 state dict: query/text outputs and ITC features match LAVIS', async () => {
    const dir = join(goldenDir, 'stage1_losses');
    const lavisDir = join(tmp, 'lavis');
    rmSync(lavisDir, { recursive: true, force: true });
    mkdirSync(lavisDir);
    copyFileSync(join(dir, 'hf/config.json'), join(lavisDir, 'config.json'));
    symlinkSync(join(dir, 'weights_lavis.safetensors'), join(lavisDir, 'model.safetensors'));
    const model = await loadQFormerFromDir(await createTfjsBackend('cpu'), lavisDir);
    expect(model.spec.textPath).toBe(true);
    expect(model.spec.retrievalHeads?.imageTextHiddenSize).toBe(32);
    const inputs = await readAll(join(dir, 'inputs.safetensors'));
    const expected = await readAll(join(dir, 'outputs.safetensors'));
    for (const batch of ['plain', 'aug_image_id']) {
      const out = await model.run({
        image_embeds: inputs[`${batch}.image_embeds`]!,
        input_ids: inputs[`${batch}.input_ids`]!,
        attention_mask: inputs[`${batch}.attention_mask`]!,
      });
      for (const [ours, theirs] of [
        ['query_output', 'query_output'],
        ['text_output', 'text_output'],
        ['image_feats', 'image_feats'],
        ['text_feat', 'text_feat'],
      ] as const) {
        expectClose(`${batch}.${theirs}`, out[ours], expected[`${batch}.${theirs}`]);
      }
    }
    model.dispose();
  });
});
