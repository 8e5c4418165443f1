import { existsSync, readdirSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QFormerModel } from '@qf/core';
import { loadQFormerFromDir } from '@qf/core/node';
import { createOnnxBackend, tempFileStorage } from '@qf/backends/onnx/node';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { drawRandomCase } from './random-case.js';
import { expectClose, goldenDir, readAll, requireDir } from './helpers.js';

/** `storage: tempFileStorage()`: weights on disk, sessions from files with external data. */
describe('onnx backend with temp-file weight storage', () => {
  const parent = mkdtempSync(join(tmpdir(), 'qf-storage-test-'));
  afterAll(() => rmSync(parent, { recursive: true, force: true }));
  const storageDir = () => readdirSync(parent).map((d) => join(parent, d));

  it('matches HF on public_small, keeps no weights in JS, removes its files on dispose', async () => {
    const caseDir = requireDir(join(goldenDir, 'public_small'));
    const backend = createOnnxBackend({
      ort,
      intraOpNumThreads: 1,
      storage: tempFileStorage({ dir: parent }),
    });
    const model = await loadQFormerFromDir(backend, join(caseDir, 'hf'));
    const inputs = await readAll(join(caseDir, 'inputs.safetensors'));
    const expected = await readAll(join(caseDir, 'outputs.safetensors'));
    const params = (
      model as unknown as { params: { names(): string[]; get(n: string): { param?: { data?: unknown } } } }
    ).params;
    expect(params.names().every((n) => params.get(n).param?.data === undefined)).toBe(true);

    const out = await model.run({
      image_embeds: inputs['image_embeds']!,
      input_ids: inputs['input_ids']!,
      attention_mask: inputs['attention_mask']!,
    });
    expectClose('query_output', out['query_output'], expected['query_only.last_hidden_state']);
    expectClose('multimodal_output', out['multimodal_output'], expected['multimodal.last_hidden_state']);
    expectClose('itm_logits', out['itm_logits'], expected['itm.logits_per_image']);
    expectClose('itc_logits', out['itc_logits'], expected['itc.logits_per_image']);
    // A second graph (another key) is built from the stored weights too.
    const { queryOutput } = await model.extractFeatures(
      inputs['image_embeds']!,
      inputs['image_attention_mask']!,
    );
    expectClose('masked query', queryOutput, expected['query_only_masked_image.last_hidden_state']);

    const [dir] = storageDir();
    expect(dir && readdirSync(dir)).toEqual(['params.f32']); // graph files go once their session exists
    model.dispose();
    await backend.dispose();
    expect(existsSync(dir as string)).toBe(false);
  });

  it('equals the in-memory backend on a random config, with int8 weights too', async () => {
    const { spec, tensors, inputs } = drawRandomCase(7);
    for (const weights of ['float32', 'int8'] as const) {
      const mem = createOnnxBackend({ ort, intraOpNumThreads: 1, weights });
      const disk = createOnnxBackend({
        ort,
        intraOpNumThreads: 1,
        weights,
        storage: tempFileStorage({ dir: parent }),
      });
      const a = await QFormerModel.fromTensors(mem, spec, tensors).run(inputs);
      const b = await QFormerModel.fromTensors(disk, spec, tensors).run(inputs);
      for (const k of Object.keys(a)) expectClose(`${weights} ${k}`, b[k], a[k], 0);
      await mem.dispose();
      await disk.dispose();
    }
  });
});
