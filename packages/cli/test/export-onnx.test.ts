import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { HostTensor } from '@qf/io';
import { createOnnxBackend } from '@qf/backends/onnx';
import { loadQFormerFromDir } from '@qf/core/node';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import type { OnnxManifest } from '@qf/backends/onnx/node';
import {
  GOLDEN_NAMES,
  expectClose,
  goldenDir,
  maxAbsDiff,
  publicSmall,
  qf,
  readAll,
  requireDir,
  tempDir,
  unmasked,
  writeInputs,
} from './helpers.js';
import { runOnnxFile } from '../../../test-utils/onnx-file.js';

/**
 * Tolerances of the reduced-precision exports, relative to the largest |value| of each fp32 output
 * (at least 1): documented in the README. Measured on public_small: fp16 <= 4.4e-3 absolute on outputs
 * up to 4.2 (about 1e-3 relative), int8 <= 0.105 absolute (about 2.5e-2 relative).
 */
const FP16_TOL = 5e-3;
const INT8_TOL = 5e-2;

const PARTS = ['query', 'text', 'multimodal', 'full', 'rerank'] as const;
const modelDir = join(requireDir(publicSmall), 'hf');
/** A Blip2ForConditionalGeneration checkpoint: no Q-Former text path, plus vision tower and OPT weights. */
const noTextModel = join(requireDir(join(goldenDir, 'blip2_opt_tiny')), 'hf');

let inputs: Record<string, HostTensor>;
let golden: Record<string, HostTensor>;
let dir: string;
let f32Dir: string;
let f32Stdout: string;
/** `qf run --backend onnx` on the golden inputs without / with the image mask. */
let ref: Record<string, HostTensor>;
let refMasked: Record<string, HostTensor>;

async function manifestOf(out: string): Promise<OnnxManifest> {
  return JSON.parse(await readFile(join(out, 'qformer_onnx.json'), 'utf8'));
}

async function runOnnx(label: string, tensors: Record<string, HostTensor | undefined>) {
  const path = await writeInputs(dir, `${label}-in.safetensors`, tensors);
  const out = join(dir, `${label}-out.safetensors`);
  const r = await qf('run', modelDir, '-i', path, '-o', out, '--backend', 'onnx');
  expect(r.code, r.stderr).toBe(0);
  return readAll(out);
}

type Arr = Float32Array | BigInt64Array | Int32Array;

/** Rows [b, b + 1) of dim 0. */
function rowOf(t: HostTensor, b: number): HostTensor {
  const per = t.shape.slice(1).reduce((x, y) => x * y, 1);
  const data = (t.data as Arr).slice(b * per, (b + 1) * per);
  return { dtype: t.dtype, shape: [1, ...t.shape.slice(1)], data } as HostTensor;
}

const maxAbs = (t: HostTensor) => (t.data as Float32Array).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

beforeAll(async () => {
  inputs = await readAll(join(publicSmall, 'inputs.safetensors'));
  golden = await readAll(join(publicSmall, 'outputs.safetensors'));
  dir = await tempDir();
  f32Dir = join(dir, 'exports', 'f32');
  const r = await qf('export-onnx', modelDir, '--out', f32Dir);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  f32Stdout = r.stdout;
  ref = await runOnnx('ref', unmasked(inputs));
  refMasked = await runOnnx('ref-masked', inputs);
});

describe('qf export-onnx', () => {
  it('writes every part the checkpoint supports, prints a table of files and the manifest path', async () => {
    expect((await readdir(f32Dir)).sort()).toEqual([
      'qformer_full.onnx',
      'qformer_multimodal.onnx',
      'qformer_onnx.json',
      'qformer_query.onnx',
      'qformer_rerank.onnx',
      'qformer_text.onnx',
    ]);
    // nothing staged is left next to --out
    expect(await readdir(join(dir, 'exports'))).toEqual(['f32']);
    // the directory gets the usual permissions, not a temp dir's 0700
    await mkdir(join(dir, 'plain'));
    expect((await stat(f32Dir)).mode).toBe((await stat(join(dir, 'plain'))).mode);

    expect(f32Stdout).toMatch(/^part\s+file\s+inputs\s+outputs\s+size$/m);
    for (const p of PARTS)
      expect(f32Stdout).toMatch(new RegExp(`^${p}\\s+qformer_${p}\\.onnx\\s.*\\d (KiB|MiB)$`, 'm'));
    for (const io of [
      'image_embeds float32 [batch, num_image_tokens, 48]',
      'input_ids int64 [batch, text_length]',
      'attention_mask int64 [batch, text_length]',
      'query_output float32 [batch, 8, 64]',
      'image_feats float32 [batch, 8, 32]',
      'language_projection float32 [batch, 8, 24]',
      'text_output float32 [batch, text_length, 64]',
      'text_feat float32 [batch, 32]',
      'multimodal_output float32 [batch, 8+text_length, 64]',
      'itm_logits float32 [batch, 2]',
      'itc_logits float32 [batch, batch]',
      'image_embeds float32 [1, num_image_tokens, 48]',
      'input_ids int64 [num_texts, text_length]',
      'itm_logits float32 [num_texts, 2]',
      'multimodal_output float32 [num_texts, 8+text_length, 64]',
    ])
      expect(f32Stdout).toContain(io);
    expect(f32Stdout).toContain(`wrote 5 parts (float32 weights, `);
    expect(f32Stdout).toContain('dynamic axes: batch, num_texts, num_image_tokens, text_length');
    expect(f32Stdout).toContain(`manifest: ${join(f32Dir, 'qformer_onnx.json')}`);

    const manifest = await manifestOf(f32Dir);
    expect(manifest.format).toBe('qformer-onnx/1');
    expect(manifest.weights).toBe('float32');
    expect(manifest.parts.map((p) => [p.part, p.file])).toEqual(PARTS.map((p) => [p, `qformer_${p}.onnx`]));
  });

  it('each part loads in a fresh InferenceSession and reproduces qf run --backend onnx and HF', async () => {
    const manifest = await manifestOf(f32Dir);
    // rerank reads one image (batch 1): tested on its own below
    for (const entry of manifest.parts.filter((p) => p.part !== 'rerank')) {
      const { inputNames, outputNames, outputs } = await runOnnxFile(
        join(f32Dir, entry.file),
        unmasked(inputs),
      );
      expect(inputNames, entry.part).toEqual(entry.inputs.map((i) => i.name));
      expect(outputNames, entry.part).toEqual(entry.outputs.map((o) => o.name));
      for (const name of outputNames) {
        expect(
          maxAbsDiff(outputs[name]!, ref[name]!),
          `${entry.part}: ${name} vs qf run`,
        ).toBeLessThanOrEqual(1e-5);
        expectClose(`${entry.part}: ${name} vs HF`, outputs[name], golden[GOLDEN_NAMES[name]!]);
      }
    }
  });

  it('the rerank part: one image against 1 or several texts reproduces model.rerank and HF', async () => {
    const entry = (await manifestOf(f32Dir)).parts.find((p) => p.part === 'rerank')!;
    expect(entry.inputs).toEqual([
      { name: 'image_embeds', dtype: 'float32', dims: [1, 'num_image_tokens', 48] },
      { name: 'input_ids', dtype: 'int64', dims: ['num_texts', 'text_length'] },
      { name: 'attention_mask', dtype: 'int64', dims: ['num_texts', 'text_length'] },
    ]);
    expect(entry.outputs.map((o) => [o.name, o.dims])).toEqual([
      ['itm_logits', ['num_texts', 2]],
      ['multimodal_output', ['num_texts', '8+text_length', 64]],
    ]);
    const backend = createOnnxBackend({ ort, intraOpNumThreads: 1 });
    const model = await loadQFormerFromDir(backend, modelDir);
    try {
      const ids = inputs['input_ids']!;
      const mask = inputs['attention_mask']!;
      const image = rowOf(inputs['image_embeds']!, 0);
      for (const [label, i, m] of [
        ['both texts', ids, mask],
        ['text 0 alone', rowOf(ids, 0), rowOf(mask, 0)],
        ['text 1 alone', rowOf(ids, 1), rowOf(mask, 1)],
      ] as const) {
        const { outputNames, outputs } = await runOnnxFile(join(f32Dir, entry.file), {
          image_embeds: image,
          input_ids: i,
          attention_mask: m,
        });
        expect(outputNames).toEqual(['itm_logits', 'multimodal_output']);
        const want = await model.rerank(image, i, m);
        expect(outputs['itm_logits']!.shape, label).toEqual([i.shape[0], 2]);
        expect(maxAbsDiff(outputs['itm_logits']!, want.itm), `${label}: itm`).toBeLessThanOrEqual(1e-5);
        expect(
          maxAbsDiff(outputs['multimodal_output']!, want.multimodalOutput),
          `${label}: multimodal_output`,
        ).toBeLessThanOrEqual(1e-5);
        if (label !== 'text 1 alone') {
          // HF has image 0 with text 0 only: row 0 of itm.logits_per_image
          expectClose(
            `${label}: itm of image 0 with text 0 vs HF`,
            rowOf(outputs['itm_logits']!, 0),
            rowOf(golden['itm.logits_per_image']!, 0),
            1e-4,
          );
        }
      }
    } finally {
      model.dispose();
      await backend.dispose();
    }
  });

  it('--part rerank --image-mask: the masked image against both texts reproduces model.rerank', async () => {
    const out = join(dir, 'rerank-masked');
    const r = await qf('export-onnx', modelDir, '--out', out, '--part', 'rerank', '--image-mask');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('image_attention_mask int64 [1, num_image_tokens]');
    expect(r.stdout).toContain('wrote 1 part (float32 weights, ');
    expect(r.stdout).toContain('dynamic axes: num_texts, num_image_tokens, text_length');
    expect((await readdir(out)).sort()).toEqual(['qformer_onnx.json', 'qformer_rerank.onnx']);
    const backend = createOnnxBackend({ ort, intraOpNumThreads: 1 });
    const model = await loadQFormerFromDir(backend, modelDir);
    try {
      for (let b = 0; b < 2; b++) {
        const image = rowOf(inputs['image_embeds']!, b);
        const imageMask = rowOf(inputs['image_attention_mask']!, b);
        const { inputNames, outputs } = await runOnnxFile(join(out, 'qformer_rerank.onnx'), {
          ...inputs,
          image_embeds: image,
          image_attention_mask: imageMask,
        });
        expect(inputNames).toEqual(['image_embeds', 'image_attention_mask', 'input_ids', 'attention_mask']);
        const want = await model.rerank(image, inputs['input_ids']!, inputs['attention_mask']!, imageMask);
        expect(maxAbsDiff(outputs['itm_logits']!, want.itm), `image ${b}`).toBeLessThanOrEqual(1e-5);
      }
    } finally {
      model.dispose();
      await backend.dispose();
    }
  });

  it('dynamic axes: the query part runs on one image with fewer image tokens', async () => {
    const e = inputs['image_embeds']!;
    const [, n, w] = e.shape as [number, number, number];
    const tokens = n - 2;
    const one = new Float32Array(tokens * w);
    for (let t = 0; t < tokens; t++) one.set((e.data as Float32Array).subarray(t * w, (t + 1) * w), t * w);
    const image: HostTensor = { dtype: 'F32', shape: [1, tokens, w], data: one };
    const { outputs } = await runOnnxFile(join(f32Dir, 'qformer_query.onnx'), { image_embeds: image });
    expect(outputs['query_output']!.shape).toEqual([1, 8, 64]);
    const expected = await runOnnx('dynamic', { image_embeds: image });
    expect(maxAbsDiff(outputs['query_output']!, expected['query_output']!)).toBeLessThanOrEqual(1e-5);
  });

  it('--image-mask adds image_attention_mask; the query part reproduces the masked run', async () => {
    const out = join(dir, 'masked');
    const r = await qf('export-onnx', modelDir, '--out', out, '--part', 'query', '--image-mask');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('image_attention_mask int64 [batch, num_image_tokens]');
    const { inputNames, outputs } = await runOnnxFile(join(out, 'qformer_query.onnx'), inputs);
    expect(inputNames).toEqual(['image_embeds', 'image_attention_mask']);
    expect(maxAbsDiff(outputs['query_output']!, refMasked['query_output']!)).toBeLessThanOrEqual(1e-5);
    expectClose(
      'masked query_output vs HF',
      outputs['query_output'],
      golden['query_only_masked_image.last_hidden_state'],
    );
  });

  it(`--fp16: about half the size, every output within ${FP16_TOL} x max|fp32| of the fp32 run`, async () => {
    const out = join(dir, 'f16');
    const r = await qf(
      'export-onnx',
      modelDir,
      '--out',
      out,
      '--part',
      'query',
      'text',
      'multimodal',
      '--fp16',
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('wrote 3 parts (float16 weights, ');
    const manifest = await manifestOf(out);
    expect(manifest.weights).toBe('float16');
    for (const entry of manifest.parts) {
      const f16Size = (await stat(join(out, entry.file))).size;
      const f32Size = (await stat(join(f32Dir, entry.file))).size;
      expect(f16Size, entry.part).toBeLessThan(f32Size * 0.6);
      const { outputs } = await runOnnxFile(join(out, entry.file), unmasked(inputs));
      for (const [name, t] of Object.entries(outputs)) {
        const d = maxAbsDiff(t, ref[name]!);
        expect(d, `${entry.part}: ${name} is rounded`).toBeGreaterThan(0);
        expect(d, `${entry.part}: ${name}`).toBeLessThanOrEqual(FP16_TOL * Math.max(1, maxAbs(ref[name]!)));
      }
    }
  });

  it(`--int8 --external-data: weights in .data files, outputs within ${INT8_TOL} x max|fp32|`, async () => {
    const out = join(dir, 'int8');
    const r = await qf(
      'export-onnx',
      modelDir,
      '--out',
      out,
      '--part',
      'query,full',
      '--int8',
      '--external-data',
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('+ qformer_query.onnx.data');
    expect((await readdir(out)).sort()).toEqual([
      'qformer_full.onnx',
      'qformer_full.onnx.data',
      'qformer_onnx.json',
      'qformer_query.onnx',
      'qformer_query.onnx.data',
    ]);
    const manifest = await manifestOf(out);
    expect(manifest.weights).toBe('int8');
    expect(manifest.parts.map((p) => p.externalData)).toEqual([
      'qformer_query.onnx.data',
      'qformer_full.onnx.data',
    ]);
    const { outputs } = await runOnnxFile(join(out, 'qformer_full.onnx'), unmasked(inputs));
    expect(Object.keys(outputs).sort()).toEqual(Object.keys(ref).sort());
    for (const [name, t] of Object.entries(outputs)) {
      expect(maxAbsDiff(t, ref[name]!), name).toBeLessThanOrEqual(INT8_TOL * Math.max(1, maxAbs(ref[name]!)));
    }
  });

  it('into an existing directory: replaces what it writes, keeps other files', async () => {
    const out = join(dir, 'existing');
    await mkdir(out);
    await writeFile(join(out, 'notes.txt'), 'keep me');
    await writeFile(join(out, 'qformer_text.onnx'), 'stale');
    const r = await qf('export-onnx', modelDir, '--out', out, '--part', 'text', '--part', 'text');
    expect(r.code, r.stderr).toBe(0);
    expect((await readdir(out)).sort()).toEqual(['notes.txt', 'qformer_onnx.json', 'qformer_text.onnx']);
    expect(await readFile(join(out, 'notes.txt'), 'utf8')).toBe('keep me');
    expect((await manifestOf(out)).parts.map((p) => p.part)).toEqual(['text']);
    const { outputs } = await runOnnxFile(join(out, 'qformer_text.onnx'), inputs);
    expect(maxAbsDiff(outputs['text_output']!, ref['text_output']!)).toBeLessThanOrEqual(1e-5);
  });

  it('a checkpoint without a text path: exports the query part by default, skipping the LM and vision tower', async () => {
    const out = join(dir, 'no-text');
    const r = await qf('export-onnx', noTextModel, '--out', out);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^note: \d+ checkpoint tensor\(s\) not used by the Q-Former/);
    expect((await manifestOf(out)).parts.map((p) => p.part)).toEqual(['query']);
  });
});

describe('qf export-onnx errors (exit 1, typed message, nothing written)', () => {
  async function fails(args: string[], out: string) {
    const r = await qf('export-onnx', ...args, '--out', out);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    return r.stderr;
  }

  it('missing model directory', async () => {
    const out = join(dir, 'err-missing');
    const err = await fails([join(dir, 'no-such-model')], out);
    expect(err).toContain('error [CLI_NOT_FOUND]: model directory not found:');
    expect(existsSync(out)).toBe(false);
  });

  it('unknown part', async () => {
    const out = join(dir, 'err-part');
    const err = await fails([modelDir, '--part', 'query,vision'], out);
    expect(err).toContain(
      'error [CLI_BAD_OPTION]: --part: unknown part "vision" (expected one of query, text, multimodal, full, rerank)',
    );
    expect(existsSync(out)).toBe(false);
  });

  it('a part the checkpoint cannot provide (text without a text path), also into an existing dir', async () => {
    const parent = join(dir, 'err-text');
    await mkdir(parent);
    const out = join(parent, 'onnx');
    const err = await fails([noTextModel, '--part', 'query', 'text', 'multimodal', 'rerank'], out);
    expect(err).toContain(
      'error [ONNX_EXPORT]: parts "text", "multimodal", "rerank" need the Q-Former text path',
    );
    expect(err).toContain('it can export: query');
    expect(await readdir(parent)).toEqual([]);

    await mkdir(out);
    await writeFile(join(out, 'qformer_onnx.json'), 'previous');
    const err2 = await fails([noTextModel, '--part', 'text'], out);
    expect(err2).toContain('error [ONNX_EXPORT]: part "text" needs the Q-Former text path');
    expect(await readdir(out)).toEqual(['qformer_onnx.json']);
    expect(await readFile(join(out, 'qformer_onnx.json'), 'utf8')).toBe('previous');
    expect(await readdir(parent)).toEqual(['onnx']);
  });

  it('--fp16 with --int8', async () => {
    const out = join(dir, 'err-weights');
    const err = await fails([modelDir, '--fp16', '--int8'], out);
    expect(err).toContain('error [CLI_BAD_OPTION]: --fp16 and --int8 exclude each other');
    expect(existsSync(out)).toBe(false);
  });

  it('--out is a file', async () => {
    const out = join(dir, 'a-file');
    await writeFile(out, 'x');
    const err = await fails([modelDir], out);
    expect(err).toContain(`error [CLI_NOT_A_DIRECTORY]: --out exists and is not a directory: ${out}`);
    expect(await readFile(out, 'utf8')).toBe('x');
  });

  it('--strict with tensors the Q-Former does not use', async () => {
    const out = join(dir, 'err-strict');
    const err = await fails([noTextModel, '--strict'], out);
    expect(err).toContain('TENSOR_UNEXPECTED');
    expect(existsSync(out)).toBe(false);
  });

  it('missing --out', async () => {
    const r = await qf('export-onnx', modelDir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("required option '-o, --out <dir>' not specified");
  });
});
