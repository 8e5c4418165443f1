import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type QFormerModel, QFormerModel as Model, initParams, qformerParamSpecs } from '@qf/core';
import { loadQFormerFromDir } from '@qf/core/node';
import {
  type OnnxBackend,
  OnnxBackendError,
  type Sym,
  createOnnxBackend,
  exportQFormerGraphs,
  supportedParts,
} from '@qf/backends/onnx';
import { exportQFormerOnnxFromDir, writeQFormerOnnx } from '@qf/backends/onnx/node';
import type { HostTensor } from '@qf/io';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drawRandomCase } from './random-case.js';
import { runOnnxFile } from '../../../test-utils/onnx-file.js';
import { expectClose, goldenDir, maxAbsDiff, readAll, requireDir } from './helpers.js';

const caseDir = requireDir(join(goldenDir, 'public_small'));

type Arr = Float32Array | BigInt64Array | Int32Array;

/** Rows [b, b + 1) of dim 0. */
function rowOf(t: HostTensor, b: number): HostTensor {
  const per = t.shape.slice(1).reduce((x, y) => x * y, 1);
  const data = (t.data as Arr).slice(b * per, (b + 1) * per);
  return { dtype: t.dtype, shape: [1, ...t.shape.slice(1)], data } as HostTensor;
}

/** Concatenates same-dtype tensors along dim 0. */
function stack(ts: readonly HostTensor[]): HostTensor {
  const first = ts[0] as HostTensor;
  const srcs = ts.map((t) => t.data as Arr);
  const data = new (srcs[0]!.constructor as new (n: number) => Arr)(srcs.reduce((n, s) => n + s.length, 0));
  let at = 0;
  for (const s of srcs) {
    (data as Float32Array).set(s as Float32Array, at);
    at += s.length;
  }
  const rows = ts.reduce((n, t) => n + (t.shape[0] as number), 0);
  return { dtype: first.dtype, shape: [rows, ...first.shape.slice(1)], data } as HostTensor;
}

describe('ONNX export (public_small)', () => {
  let dir: string;
  let backend: OnnxBackend;
  let model: QFormerModel<Sym>;
  let inputs: Record<string, HostTensor>;
  let expected: Record<string, HostTensor>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qf-onnx-'));
    backend = createOnnxBackend({ ort, intraOpNumThreads: 1 });
    model = await loadQFormerFromDir(backend, join(caseDir, 'hf'));
    inputs = await readAll(join(caseDir, 'inputs.safetensors'));
    expected = await readAll(join(caseDir, 'outputs.safetensors'));
  });
  afterAll(async () => {
    model?.dispose();
    await backend?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes every part with a manifest of names and dims', async () => {
    const manifest = await writeQFormerOnnx(model, join(dir, 'f32'), { imageMask: true });
    expect(manifest.parts.map((p) => p.part)).toEqual(['query', 'text', 'multimodal', 'full', 'rerank']);
    const query = manifest.parts[0]!;
    expect(query.inputs).toEqual([
      { name: 'image_embeds', dtype: 'float32', dims: ['batch', 'num_image_tokens', 48] },
      { name: 'image_attention_mask', dtype: 'int64', dims: ['batch', 'num_image_tokens'] },
    ]);
    expect(query.outputs.map((o) => o.name)).toEqual(['query_output', 'image_feats', 'language_projection']);
    expect(query.outputs[0]!.dims).toEqual(['batch', 8, 64]);
    const mm = manifest.parts[2]!;
    expect(mm.outputs.map((o) => o.name)).toEqual(['multimodal_output', 'itm_logits', 'itc_logits']);
    expect(JSON.parse(readFileSync(join(dir, 'f32', 'qformer_onnx.json'), 'utf8')).format).toBe(
      'qformer-onnx/1',
    );
  });

  it('the rerank part: one image at batch 1 against num_texts texts, in the manifest', async () => {
    const manifest = await writeQFormerOnnx(model, join(dir, 'rerank'), { parts: ['rerank'] });
    expect(manifest.parts).toEqual([
      {
        part: 'rerank',
        file: 'qformer_rerank.onnx',
        inputs: [
          { name: 'image_embeds', dtype: 'float32', dims: [1, 'num_image_tokens', 48] },
          { name: 'input_ids', dtype: 'int64', dims: ['num_texts', 'text_length'] },
          { name: 'attention_mask', dtype: 'int64', dims: ['num_texts', 'text_length'] },
        ],
        outputs: [
          { name: 'itm_logits', dtype: 'float32', dims: ['num_texts', 2] },
          { name: 'multimodal_output', dtype: 'float32', dims: ['num_texts', '8+text_length', 64] },
        ],
      },
    ]);
    // the image is read at batch 1 by the (fused) K/V MatMuls only: no Expand/Tile of it per text
    const [part] = await exportQFormerGraphs(model, { parts: ['rerank'] });
    const readers = part!.graph.nodes.filter((n) => n.inputs.includes('image_embeds'));
    expect(readers.length).toBeGreaterThan(0);
    expect(readers.every((n) => n.op === 'MatMul')).toBe(true);
    expect(part!.graph.metadata?.['part']).toBe('rerank');
    const masked = await writeQFormerOnnx(model, join(dir, 'rerank-masked'), {
      parts: ['rerank'],
      imageMask: true,
    });
    expect(masked.parts[0]!.inputs.map((i) => [i.name, i.dims])).toEqual([
      ['image_embeds', [1, 'num_image_tokens', 48]],
      ['image_attention_mask', [1, 'num_image_tokens']],
      ['input_ids', ['num_texts', 'text_length']],
      ['attention_mask', ['num_texts', 'text_length']],
    ]);
  });

  it('the rerank file in a fresh session reproduces model.rerank (1e-5) and HF, for 1 and several texts', async () => {
    const file = join(dir, 'rerank', 'qformer_rerank.onnx');
    const maskedFile = join(dir, 'rerank-masked', 'qformer_rerank.onnx');
    const ids = inputs['input_ids']!;
    const mask = inputs['attention_mask']!;
    const texts = ids.shape[0] as number;
    for (let b = 0; b < (inputs['image_embeds']!.shape[0] as number); b++) {
      const image = rowOf(inputs['image_embeds']!, b);
      const imageMask = rowOf(inputs['image_attention_mask']!, b);
      // every text (dynamic num_texts = 2), then each text alone (num_texts = 1), then 3 texts
      const cases: [string, HostTensor, HostTensor][] = [
        ['all texts', ids, mask],
        ...Array.from({ length: texts }, (_, t): [string, HostTensor, HostTensor] => [
          `text ${t}`,
          rowOf(ids, t),
          rowOf(mask, t),
        ]),
        ['3 texts', stack([ids, rowOf(ids, 0)]), stack([mask, rowOf(mask, 0)])],
      ];
      for (const [label, i, m] of cases) {
        const want = await model.rerank(image, i, m);
        const got = (await runOnnxFile(file, { image_embeds: image, input_ids: i, attention_mask: m }))
          .outputs;
        expect(Object.keys(got), label).toEqual(['itm_logits', 'multimodal_output']);
        expect(got['itm_logits']!.shape, label).toEqual([i.shape[0], 2]);
        expect(maxAbsDiff(got['itm_logits']!, want.itm), `image ${b} ${label} itm`).toBeLessThanOrEqual(1e-5);
        expect(
          maxAbsDiff(got['multimodal_output']!, want.multimodalOutput),
          `image ${b} ${label} multimodal_output`,
        ).toBeLessThanOrEqual(1e-5);

        const wantMasked = await model.rerank(image, i, m, imageMask);
        const gotMasked = (
          await runOnnxFile(maskedFile, {
            image_embeds: image,
            image_attention_mask: imageMask,
            input_ids: i,
            attention_mask: m,
          })
        ).outputs;
        expect(maxAbsDiff(gotMasked['itm_logits']!, wantMasked.itm), `masked ${label}`).toBeLessThanOrEqual(
          1e-5,
        );
        if (label === 'all texts') {
          // HF ran image b with text b only: row b of logits_per_image.
          expectClose(
            `image ${b} itm vs HF`,
            rowOf(got['itm_logits']!, b),
            rowOf(expected['itm.logits_per_image']!, b),
            1e-4,
          );
          expectClose(
            `image ${b} multimodal vs HF`,
            rowOf(got['multimodal_output']!, b),
            rowOf(expected['multimodal.last_hidden_state']!, b),
            1e-4,
          );
        }
      }
    }
  });

  it('rerank needs the retrieval heads: not a default part without them, a typed error when asked for', async () => {
    const { spec } = drawRandomCase(7);
    const noHeads = { ...spec, textPath: true, retrievalHeads: undefined };
    const b = createOnnxBackend({});
    try {
      const m = Model.fromTensors(b, noHeads, initParams(qformerParamSpecs(noHeads), { seed: 1 }));
      expect(supportedParts(m)).toEqual(['query', 'text', 'multimodal', 'full']);
      const err = await exportQFormerGraphs(m, { parts: ['rerank'] }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OnnxBackendError);
      expect((err as Error).message).toMatch(/part "rerank" needs the retrieval heads/);
      m.dispose();
    } finally {
      await b.dispose();
    }
  });

  it('exported files re-loaded in fresh sessions match the in-process session and HF', async () => {
    const all = { ...inputs } as Record<string, HostTensor>;
    const inProcess = await model.run({
      image_embeds: all['image_embeds']!,
      image_attention_mask: all['image_attention_mask']!,
      input_ids: all['input_ids']!,
      attention_mask: all['attention_mask']!,
    });
    const full = (await runOnnxFile(join(dir, 'f32', 'qformer_full.onnx'), all)).outputs;
    for (const k of Object.keys(inProcess))
      expect(maxAbsDiff(full[k]!, inProcess[k]!), k).toBeLessThanOrEqual(1e-6);
    const query = (await runOnnxFile(join(dir, 'f32', 'qformer_query.onnx'), all)).outputs;
    expectClose('query masked', query['query_output'], expected['query_only_masked_image.last_hidden_state']);
    const text = (await runOnnxFile(join(dir, 'f32', 'qformer_text.onnx'), all)).outputs;
    expectClose('text', text['text_output'], expected['text_only.last_hidden_state']);
    expectClose('text_feat', text['text_feat'], expected['itc.text_embeds']);
  });

  it('fp16 weights halve the file and stay within fp16 rounding; external data loads from its file', async () => {
    await writeQFormerOnnx(model, join(dir, 'f16'), {
      parts: ['query'],
      weights: 'float16',
      externalData: 'always',
    });
    const f32Size = statSync(join(dir, 'f32', 'qformer_query.onnx')).size;
    const f16Size =
      statSync(join(dir, 'f16', 'qformer_query.onnx')).size +
      statSync(join(dir, 'f16', 'qformer_query.onnx.data')).size;
    expect(f16Size).toBeLessThan(f32Size * 0.75);
    const out = (await runOnnxFile(join(dir, 'f16', 'qformer_query.onnx'), inputs)).outputs;
    const d = maxAbsDiff(out['query_output']!, expected['query_only.last_hidden_state']!);
    expect(d).toBeGreaterThan(0);
    expect(d).toBeLessThan(0.05);
  });

  it('exports straight from a model directory without a runtime (the CLI entry)', async () => {
    const manifest = await exportQFormerOnnxFromDir(join(caseDir, 'hf'), join(dir, 'cli'), {
      parts: ['multimodal'],
    });
    expect(manifest.parts.map((p) => p.file)).toEqual(['qformer_multimodal.onnx']);
    const out = (await runOnnxFile(join(dir, 'cli', 'qformer_multimodal.onnx'), inputs)).outputs;
    expectClose('itm', out['itm_logits'], expected['itm.logits_per_image']);
    expectClose('itc', out['itc_logits'], expected['itc.logits_per_image']);
  });

  it('an exported file with int8 weights and external data runs, with bounded deviation', async () => {
    const { spec, tensors, inputs: rin } = drawRandomCase(41);
    const b = createOnnxBackend({});
    const m = Model.fromTensors(b, spec, tensors);
    await writeQFormerOnnx(m, join(dir, 'int8'), {
      parts: ['full'],
      weights: 'int8',
      externalData: 'always',
      imageMask: true,
    });
    const got = (await runOnnxFile(join(dir, 'int8', 'qformer_full.onnx'), rin)).outputs;
    const want = await Model.fromTensors(backend, spec, tensors).run(rin);
    expect(maxAbsDiff(got['query_output']!, want['query_output']!)).toBeLessThan(0.5);
    m.dispose();
    await b.dispose();
  });
});
