import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend } from '@qf/core';
import { loadQFormerFromDir } from '@qf/core/node';
import type { HostTensor } from '@qf/io';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectClose, hfRandomDir, readAll, requireDir } from './helpers.js';
import { FAMILY_SETUPS } from './setups.js';

/**
 * Parity with HF transformers on random configs (other sizes and head counts,
 * cross_attention_frequency 1/2/3, padded text and images): see fixtures/hf-random/README.md.
 */
const cases = readdirSync(requireDir(hfRandomDir)).filter((d) => d.startsWith('random_'));

for (const setup of FAMILY_SETUPS) {
  describe(`HF parity on random configs (${setup.name})`, () => {
    let backend: Backend<unknown>;
    let resourcesAtStart = 0;
    beforeAll(async () => {
      backend = await setup.create();
      resourcesAtStart = setup.liveResources(backend);
    });
    afterAll(async () => setup.release(backend));

    it('has the generated cases', () => {
      expect(cases.length).toBeGreaterThanOrEqual(8);
    });

    for (const name of cases) {
      it(`${name}: query, text, multimodal and retrieval outputs match HF`, async () => {
        const dir = join(hfRandomDir, name);
        const inputs = await readAll(join(dir, 'inputs.safetensors'));
        const expected = await readAll(join(dir, 'outputs.safetensors'));
        const model = await loadQFormerFromDir(backend, dir);
        try {
          const text = {
            input_ids: inputs['input_ids']!,
            attention_mask: inputs['attention_mask']!,
          } satisfies Record<string, HostTensor>;
          const masked = await model.run({
            image_embeds: inputs['image_embeds']!,
            image_attention_mask: inputs['image_attention_mask']!,
            ...text,
          });
          expectClose(`${name} query_output`, masked['query_output'], expected['query_output']);
          expectClose(`${name} text_output`, masked['text_output'], expected['text_output']);
          if (expected['multimodal_output'])
            expectClose(
              `${name} multimodal_output`,
              masked['multimodal_output'],
              expected['multimodal_output'],
            );

          const unmasked = await model.run({ image_embeds: inputs['image_embeds']!, ...text });
          expectClose(
            `${name} query_output_unmasked`,
            unmasked['query_output'],
            expected['query_output_unmasked'],
          );
          expectClose(
            `${name} multimodal_output_unmasked_image`,
            unmasked['multimodal_output'],
            expected['multimodal_output_unmasked_image'],
          );

          const retrieval = await model.run({ image_embeds: inputs['vision_image_embeds']!, ...text });
          for (const k of ['itm_logits', 'itc_logits', 'image_feats', 'text_feat']) {
            expectClose(`${name} ${k}`, retrieval[k], expected[k]);
          }
        } finally {
          model.dispose();
        }
      });
    }

    it("frees every model's tensors or sessions on dispose", () => {
      expect(setup.liveResources(backend)).toBe(resourcesAtStart);
    });
  });
}
