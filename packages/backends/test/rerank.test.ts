import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend, QFormerModel } from '@qf/core';
import { loadQFormerFromDir } from '@qf/core/node';
import { type OnnxBackend, createOnnxBackend } from '@qf/backends/onnx';
import { createTfjsBackend } from '@qf/backends/tfjs';
import { type HostTensor, TensorError } from '@qf/io';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectClose, goldenDir, hfRandomDir, readAll, requireDir } from './helpers.js';

/**
 * ITM re-ranking with a shared image (`QFormerModel.rerank`, image batch 1 against T texts): the
 * image's cross-attention keys/values are computed once and broadcast. It must equal the naive path
 * (the image repeated T times through the same ITM pass) to 1e-5, and match HF on the pairs HF ran.
 */

type Arr = Float32Array | BigInt64Array | Int32Array;

/** Rows [b, b + 1) of dim 0. */
function rowOf(t: HostTensor, b: number): HostTensor {
  const per = t.shape.slice(1).reduce((x, y) => x * y, 1);
  const data = (t.data as Arr).slice(b * per, (b + 1) * per);
  return { dtype: t.dtype, shape: [1, ...t.shape.slice(1)], data } as HostTensor;
}

/** A [1, ...] tensor repeated n times along dim 0. */
function repeat(t: HostTensor, n: number): HostTensor {
  const src = t.data as Arr;
  const data = new (src.constructor as new (n: number) => Arr)(src.length * n);
  for (let i = 0; i < n; i++) (data as Float32Array).set(src as Float32Array, i * src.length);
  return { dtype: t.dtype, shape: [n, ...t.shape.slice(1)], data } as HostTensor;
}

type AnyModel = QFormerModel<unknown>;

/** rerank(image b, every text) vs the image repeated through the same ITM pass, to 1e-5. */
async function rerankAgainstNaive(
  model: AnyModel,
  image: HostTensor,
  ids: HostTensor,
  mask: HostTensor | undefined,
  imageMask: HostTensor | undefined,
  label: string,
) {
  const t = ids.shape[0] as number;
  const shared = await model.rerank(image, ids, mask, imageMask);
  const naive = await model.run(
    {
      image_embeds: repeat(image, t),
      input_ids: ids,
      ...(mask ? { attention_mask: mask } : {}),
      ...(imageMask ? { image_attention_mask: repeat(imageMask, t) } : {}),
    },
    { itmOnly: true },
  );
  expect(Object.keys(naive).sort()).toEqual(['itm_logits', 'multimodal_output']);
  expectClose(`${label} itm (shared vs repeated)`, shared.itm, naive['itm_logits'], 1e-5);
  expectClose(
    `${label} multimodal_output (shared vs repeated)`,
    shared.multimodalOutput,
    naive['multimodal_output'],
    1e-5,
  );
  return shared;
}

const makers: [string, () => Promise<Backend<unknown>>][] = [
  ['tfjs-cpu', async () => (await createTfjsBackend('cpu')) as Backend<unknown>],
  ['onnx', async () => createOnnxBackend({ ort, intraOpNumThreads: 1 }) as Backend<unknown>],
];

for (const [backendName, make] of makers) {
  describe(`ITM re-ranking with a shared image (${backendName})`, () => {
    let backend: Backend<unknown>;
    beforeAll(async () => {
      backend = await make();
    });
    afterAll(async () => {
      if (backendName === 'onnx') await (backend as unknown as OnnxBackend).dispose();
    });

    describe('public_small golden', () => {
      const caseDir = requireDir(join(goldenDir, 'public_small'));
      let model: AnyModel;
      let inputs: Record<string, HostTensor>;
      let expected: Record<string, HostTensor>;
      beforeAll(async () => {
        model = (await loadQFormerFromDir(backend, join(caseDir, 'hf'))) as AnyModel;
        inputs = await readAll(join(caseDir, 'inputs.safetensors'));
        expected = await readAll(join(caseDir, 'outputs.safetensors'));
      });
      afterAll(() => model?.dispose());

      it('each image against every text equals the repeated-image path and HF on its own pair', async () => {
        const ids = inputs['input_ids']!;
        const mask = inputs['attention_mask']!;
        const full = await model.score(inputs['image_embeds']!, ids, mask);
        for (let b = 0; b < (ids.shape[0] as number); b++) {
          const image = rowOf(inputs['image_embeds']!, b);
          const r = await rerankAgainstNaive(model, image, ids, mask, undefined, `image ${b}`);
          expect(r.itm.shape).toEqual([ids.shape[0], 2]);
          expectClose(`image ${b} itm vs HF`, rowOf(r.itm, b), rowOf(expected['itm.logits_per_image']!, b));
          expectClose(
            `image ${b} multimodal vs HF`,
            rowOf(r.multimodalOutput, b),
            rowOf(expected['multimodal.last_hidden_state']!, b),
          );
          expectClose(`image ${b} itm vs score()`, rowOf(r.itm, b), rowOf(full.itm, b), 1e-5);
        }
      });

      it('with a padded image', async () => {
        const ids = inputs['input_ids']!;
        for (let b = 0; b < 2; b++) {
          await rerankAgainstNaive(
            model,
            rowOf(inputs['image_embeds']!, b),
            ids,
            inputs['attention_mask']!,
            rowOf(inputs['image_attention_mask']!, b),
            `masked image ${b}`,
          );
        }
      });

      it('one text, and without a text mask', async () => {
        const image = rowOf(inputs['image_embeds']!, 0);
        await rerankAgainstNaive(model, image, rowOf(inputs['input_ids']!, 0), undefined, undefined, 'T=1');
        await rerankAgainstNaive(model, image, inputs['input_ids']!, undefined, undefined, 'no mask');
      });

      it('validates: image batch must be 1 or the text batch; both inputs required', async () => {
        const three: HostTensor = { dtype: 'I32', shape: [3, 2], data: new Int32Array(6) };
        const err = await model.rerank(inputs['image_embeds']!, three).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(TensorError);
        expect((err as Error).message).toMatch(/input_ids.*expected \[2, T\], got \[3, 2\]/);
        const noText = await model
          .run({ image_embeds: inputs['image_embeds']! }, { itmOnly: true })
          .catch((e: unknown) => e);
        expect((noText as Error).message).toMatch(/input_ids.*ITM pass needs input_ids/);
        // Outside the ITM pass the batches must still match.
        const plain = await model
          .run({ image_embeds: rowOf(inputs['image_embeds']!, 0), input_ids: inputs['input_ids']! })
          .catch((e: unknown) => e);
        expect((plain as Error).message).toMatch(/input_ids.*expected \[1, T\], got \[2, 7\]/);
      });

      if (backendName === 'onnx') {
        it('one session serves every text count', async () => {
          const onnx = backend as unknown as OnnxBackend;
          const image = rowOf(inputs['image_embeds']!, 0);
          const ids = inputs['input_ids']!;
          await model.rerank(image, ids);
          const before = onnx.sessionCount;
          await model.rerank(image, repeat(rowOf(ids, 1), 3));
          await model.rerank(image, repeat(rowOf(ids, 0), 5));
          expect(onnx.sessionCount).toBe(before);
        });

        it('the recorded graph reads the image at batch 1: K/V projected once, not per text', async () => {
          const onnx = backend as unknown as OnnxBackend;
          const [rec] = await onnx.recordRuns(() =>
            model.run(
              { image_embeds: rowOf(inputs['image_embeds']!, 0), input_ids: inputs['input_ids']! },
              { itmOnly: true },
            ),
          );
          const image = rec!.trace.inputs.find((i) => i.name === 'image_embeds');
          expect(image?.dims[0]).toBe(1);
          const readers = rec!.trace.nodes.filter((n) => n.inputs.includes('image_embeds'));
          expect(readers.length).toBeGreaterThan(0);
          expect(readers.every((n) => n.op === 'MatMul')).toBe(true); // no Expand/Tile of the image
        });
      }
    });

    describe('hf-random configs', () => {
      const cases = readdirSync(requireDir(hfRandomDir)).filter((d) => d.startsWith('random_'));
      for (const name of cases) {
        it(`${name}: shared image equals repeated image and matches HF`, async () => {
          const dir = join(hfRandomDir, name);
          const inputs = await readAll(join(dir, 'inputs.safetensors'));
          const expected = await readAll(join(dir, 'outputs.safetensors'));
          const model = (await loadQFormerFromDir(backend, dir)) as AnyModel;
          try {
            const ids = inputs['input_ids']!;
            const mask = inputs['attention_mask']!;
            for (let b = 0; b < (ids.shape[0] as number); b++) {
              const vision = rowOf(inputs['vision_image_embeds']!, b);
              const r = await rerankAgainstNaive(model, vision, ids, mask, undefined, `${name} image ${b}`);
              expectClose(`${name} image ${b} itm vs HF`, rowOf(r.itm, b), rowOf(expected['itm_logits']!, b));

              const image = rowOf(inputs['image_embeds']!, b);
              const u = await rerankAgainstNaive(model, image, ids, mask, undefined, `${name} unmasked ${b}`);
              expectClose(
                `${name} image ${b} multimodal vs HF`,
                rowOf(u.multimodalOutput, b),
                rowOf(expected['multimodal_output_unmasked_image']!, b),
              );
              const imageMask = rowOf(inputs['image_attention_mask']!, b);
              const m = await rerankAgainstNaive(model, image, ids, mask, imageMask, `${name} masked ${b}`);
              if (expected['multimodal_output'])
                expectClose(
                  `${name} image ${b} masked multimodal vs HF`,
                  rowOf(m.multimodalOutput, b),
                  rowOf(expected['multimodal_output']!, b),
                );
            }
          } finally {
            model.dispose();
          }
        });
      }
    });
  });
}
