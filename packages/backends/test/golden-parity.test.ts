import { join } from 'node:path';
import {
  type Backend,
  type ParamStore,
  type QFormerModel,
  concatInputs,
  queryTokens,
  textEmbeddings,
} from '@qf/core';
import { loadQFormerFromDir } from '@qf/core/node';
import type { HostTensor } from '@qf/io';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectClose, goldenDir, readAll, requireDir } from './helpers.js';
import { ALL_SETUPS } from './setups.js';

const caseDir = requireDir(join(goldenDir, 'public_small'));

const transpose2 = (x: HostTensor): HostTensor => {
  const [r, c] = x.shape as [number, number];
  const d = x.data as Float32Array;
  const o = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) o[j * r + i] = d[i * c + j]!;
  return { dtype: 'F32', shape: [c, r], data: o };
};

for (const setup of ALL_SETUPS) {
  describe(`public_small golden parity on ${setup.name}`, () => {
    let backend: Backend<unknown>;
    let model: QFormerModel<unknown>;
    let inputs: Record<string, HostTensor>;
    let expected: Record<string, HostTensor>;

    beforeAll(async () => {
      backend = await setup.create();
      model = await loadQFormerFromDir(backend, join(caseDir, 'hf'));
      inputs = await readAll(join(caseDir, 'inputs.safetensors'));
      expected = await readAll(join(caseDir, 'outputs.safetensors'));
    });
    afterAll(async () => {
      model?.dispose();
      if (backend) await setup.release(backend);
    });

    it('loads every part of the retrieval checkpoint', () => {
      expect(model.spec.textPath).toBe(true);
      expect(model.spec.retrievalHeads?.imageTextHiddenSize).toBe(32);
      expect(model.spec.languageProjection?.outFeatures).toBe(24);
      expect(model.ignored).toEqual([]);
    });

    it('matches every hidden state and head output (all-ones image mask)', async () => {
      const out = await model.run(
        {
          image_embeds: inputs['image_embeds']!,
          input_ids: inputs['input_ids']!,
          attention_mask: inputs['attention_mask']!,
        },
        { hiddenStates: true },
      );
      for (let i = 0; i <= 4; i++) {
        expectClose(
          `query_only.hidden_states.${i}`,
          out[`query_hidden_states.${i}`],
          expected[`query_only.hidden_states.${i}`],
        );
        expectClose(
          `text_only.hidden_states.${i}`,
          out[`text_hidden_states.${i}`],
          expected[`text_only.hidden_states.${i}`],
        );
        expectClose(
          `multimodal.hidden_states.${i}`,
          out[`multimodal_hidden_states.${i}`],
          expected[`multimodal.hidden_states.${i}`],
        );
      }
      expectClose(
        'query_only.last_hidden_state',
        out['query_output'],
        expected['query_only.last_hidden_state'],
      );
      expectClose('text_only.last_hidden_state', out['text_output'], expected['text_only.last_hidden_state']);
      expectClose(
        'multimodal.last_hidden_state',
        out['multimodal_output'],
        expected['multimodal.last_hidden_state'],
      );
      expectClose('itm.logits_per_image', out['itm_logits'], expected['itm.logits_per_image']);
      expectClose('itc.logits_per_image', out['itc_logits'], expected['itc.logits_per_image']);
      expectClose('itc.image_embeds', out['image_feats'], expected['itc.image_embeds']);
      expectClose('itc.text_embeds', out['text_feat'], expected['itc.text_embeds']);
      expectClose(
        'language_projection.output',
        out['language_projection'],
        expected['language_projection.output'],
      );
    });

    it('matches the ITC/ITM per-text views (transposes)', async () => {
      const { itc, itm } = await model.score(
        inputs['image_embeds']!,
        inputs['input_ids']!,
        inputs['attention_mask']!,
      );
      expectClose('itc.logits_per_text', transpose2(itc), expected['itc.logits_per_text']);
      expectClose('itm.logits_per_text', transpose2(itm), expected['itm.logits_per_text']);
    });

    it('matches the padded-image query forward', async () => {
      const { queryOutput } = await model.extractFeatures(
        inputs['image_embeds']!,
        inputs['image_attention_mask']!,
      );
      expectClose(
        'query_only_masked_image.last_hidden_state',
        queryOutput,
        expected['query_only_masked_image.last_hidden_state'],
      );
    });

    it('matches the embeddings before the LayerNorm', async () => {
      const params = (model as unknown as { params: ParamStore<unknown> }).params;
      const out = await backend.run(
        'embeddings',
        (ops, x) => {
          const text = textEmbeddings(ops, params, x['input_ids']!);
          return { text, multimodal: concatInputs(ops, queryTokens(ops, params, x['input_ids']!), text) };
        },
        { input_ids: inputs['input_ids']! },
      );
      expectClose('text_only.embeddings', out.text, expected['text_only.embeddings']);
      expectClose('multimodal.embeddings', out.multimodal, expected['multimodal.embeddings']);
    });

    it(`keeps ${setup.kind === 'tfjs' ? 'tf.memory().numTensors' : 'the session count'} flat over repeated forwards`, async () => {
      const run = () =>
        model.run({
          image_embeds: inputs['image_embeds']!,
          input_ids: inputs['input_ids']!,
          attention_mask: inputs['attention_mask']!,
        });
      await run();
      await model.extractFeatures(inputs['image_embeds']!, inputs['image_attention_mask']!);
      const before = setup.liveResources(backend);
      for (let i = 0; i < 5; i++) await run();
      await model.extractFeatures(inputs['image_embeds']!, inputs['image_attention_mask']!);
      expect(setup.liveResources(backend)).toBe(before);
    });
  });
}
