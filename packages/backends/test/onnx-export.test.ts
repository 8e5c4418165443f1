import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type QFormerModel, QFormerModel as Model } from '@qf/core';
import { loadQFormerFromDir } from '@qf/core/node';
import { type OnnxBackend, type Sym, createOnnxBackend } from '@qf/backends/onnx';
import { exportQFormerOnnxFromDir, writeQFormerOnnx } from '@qf/backends/onnx/node';
import type { HostTensor } from '@qf/io';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drawRandomCase } from './random-case.js';
import { expectClose, goldenDir, maxAbsDiff, readAll, requireDir } from './helpers.js';

const caseDir = requireDir(join(goldenDir, 'public_small'));

/** Runs an exported file in a fresh ORT session (no qformer-ts code involved). */
async function runFile(path: string, feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
  const session = await ort.InferenceSession.create(path, { intraOpNumThreads: 1 });
  try {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const name of session.inputNames) {
      const t = feeds[name];
      if (!t) throw new Error(`no feed for ${name}`);
      ortFeeds[name] =
        t.dtype === 'F32'
          ? new ort.Tensor('float32', t.data as Float32Array, [...t.shape])
          : new ort.Tensor(
              'int64',
              BigInt64Array.from(t.data as ArrayLike<number | bigint>, (v) => BigInt(v)),
              [...t.shape],
            );
    }
    const out = await session.run(ortFeeds);
    const res: Record<string, HostTensor> = {};
    for (const [k, v] of Object.entries(out))
      res[k] = { dtype: 'F32', shape: v.dims.map(Number), data: v.data as Float32Array };
    return res;
  } finally {
    await session.release();
  }
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
    expect(manifest.parts.map((p) => p.part)).toEqual(['query', 'text', 'multimodal', 'full']);
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

  it('exported files re-loaded in fresh sessions match the in-process session and HF', async () => {
    const all = { ...inputs } as Record<string, HostTensor>;
    const inProcess = await model.run({
      image_embeds: all['image_embeds']!,
      image_attention_mask: all['image_attention_mask']!,
      input_ids: all['input_ids']!,
      attention_mask: all['attention_mask']!,
    });
    const full = await runFile(join(dir, 'f32', 'qformer_full.onnx'), all);
    for (const k of Object.keys(inProcess))
      expect(maxAbsDiff(full[k]!, inProcess[k]!), k).toBeLessThanOrEqual(1e-6);
    const query = await runFile(join(dir, 'f32', 'qformer_query.onnx'), all);
    expectClose('query masked', query['query_output'], expected['query_only_masked_image.last_hidden_state']);
    const text = await runFile(join(dir, 'f32', 'qformer_text.onnx'), all);
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
    const out = await runFile(join(dir, 'f16', 'qformer_query.onnx'), inputs);
    const d = maxAbsDiff(out['query_output']!, expected['query_only.last_hidden_state']!);
    expect(d).toBeGreaterThan(0);
    expect(d).toBeLessThan(0.05);
  });

  it('exports straight from a model directory without a runtime (the CLI entry)', async () => {
    const manifest = await exportQFormerOnnxFromDir(join(caseDir, 'hf'), join(dir, 'cli'), {
      parts: ['multimodal'],
    });
    expect(manifest.parts.map((p) => p.file)).toEqual(['qformer_multimodal.onnx']);
    const out = await runFile(join(dir, 'cli', 'qformer_multimodal.onnx'), inputs);
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
    const got = await runFile(join(dir, 'int8', 'qformer_full.onnx'), rin);
    const want = await Model.fromTensors(backend, spec, tensors).run(rin);
    expect(maxAbsDiff(got['query_output']!, want['query_output']!)).toBeLessThan(0.5);
    m.dispose();
    await b.dispose();
  });
});
