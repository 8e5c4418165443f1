import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Blip2OnnxManifest, openBlip2Onnx } from '@qf/backends/onnx/node';
import { type HostTensor, toInt32 } from '@qf/io';
import { writeSafetensorsFile } from '@qf/io/node';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { runOnnxFile } from '../../../test-utils/onnx-file.js';
import { expectClose, goldenDir, publicSmall, qf, readAll, requireDir, tempDir } from './helpers.js';

/** `qf export-onnx --part vision|qformer_projector|lm|all` on whole BLIP-2 / InstructBLIP directories. */
const model = (name: string) => join(requireDir(join(goldenDir, name)), 'hf');
const ints = (t: HostTensor | undefined) => Array.from(toInt32(t as HostTensor, 't'));
const manifestOf = async (out: string): Promise<Blip2OnnxManifest> =>
  JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8'));

let dir: string;
beforeAll(async () => {
  dir = await tempDir('qf-cli-blip2-');
});

describe('qf export-onnx, whole BLIP-2 / InstructBLIP models', () => {
  it('--part all (OPT): every part, the manifest, and golden captions generated from the files', async () => {
    const out = join(dir, 'opt-all');
    // --strict: every checkpoint tensor is read (the stored tied lm_head copy does not count).
    const r = await qf('export-onnx', model('blip2_opt_tiny'), '--out', out, '--part', 'all', '--strict');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const m = await manifestOf(out);
    expect(m.parts.map((p) => p.part)).toEqual(['vision', 'qformer_projector', 'lm_prefill', 'lm_step']);
    expect((await readdir(out)).sort()).toEqual([
      'blip2_lm_prefill.onnx',
      'blip2_lm_step.onnx',
      'blip2_qformer_projector.onnx',
      'blip2_vision.onnx',
      'manifest.json',
    ]);
    for (const p of m.parts) expect(r.stdout).toContain(p.file);
    expect(r.stdout).toContain('pixel_values float32 [batch, 3, 32, 32]');
    expect(r.stdout).toContain('past_key.0 float32 [batch, 4, past_length, 10]');
    expect(r.stdout).toMatch(/wrote 4 parts \(float32 weights, [\d.]+ [KM]i?B\) to /);
    expect(r.stdout).toContain('dynamic axes: batch, num_image_tokens, prompt_length, past_length\n');
    expect(r.stdout).toContain(`manifest: ${join(out, 'manifest.json')}`);

    const caseDir = join(goldenDir, 'blip2_opt_tiny');
    const inputs = await readAll(join(caseDir, 'inputs.safetensors'));
    const expected = await readAll(join(caseDir, 'outputs.safetensors'));
    const vision = await runOnnxFile(join(out, 'blip2_vision.onnx'), {
      pixel_values: inputs['pixel_values'],
    });
    expectClose('vision_output', vision.outputs['vision_output'], expected['vision.last_hidden_state']);
    const runner = await openBlip2Onnx(out, { ort, intraOpNumThreads: 1 });
    try {
      const res = await runner.generate(
        {
          pixel_values: inputs['pixel_values'] as HostTensor,
          input_ids: inputs['input_ids'],
          attention_mask: inputs['attention_mask'],
        },
        { maxNewTokens: 5 },
      );
      expect(ints(res.sequences)).toEqual(ints(expected['generate.sequences']));
      expectClose('generate.scores', res.scores, expected['generate.scores']);
    } finally {
      await runner.dispose();
    }
  });

  it('--part vision,qformer_projector (InstructBLIP): just those two, with the instruction inputs', async () => {
    const out = join(dir, 'instruct');
    const r = await qf(
      'export-onnx',
      model('instructblip_tiny'),
      '--out',
      out,
      '--part',
      'vision,qformer_projector',
    );
    expect(r.code, r.stderr).toBe(0);
    const m = await manifestOf(out);
    expect(m.modelType).toBe('instructblip');
    expect(m.parts.map((p) => p.part)).toEqual(['vision', 'qformer_projector']);
    expect(m.parts[1]?.inputs.map((i) => i.name)).toEqual([
      'image_embeds',
      'qformer_input_ids',
      'qformer_attention_mask',
    ]);
    const caseDir = join(goldenDir, 'instructblip_tiny');
    const inputs = await readAll(join(caseDir, 'inputs.safetensors'));
    const expected = await readAll(join(caseDir, 'outputs.safetensors'));
    const q = await runOnnxFile(join(out, 'blip2_qformer_projector.onnx'), {
      image_embeds: expected['vision.last_hidden_state'],
      qformer_input_ids: inputs['qformer_input_ids'],
      qformer_attention_mask: inputs['qformer_attention_mask'],
    });
    expectClose(
      'language_projection',
      q.outputs['language_projection'],
      expected['language_projection.output'],
    );
  });

  it('--part lm --fp16 --external-data (T5): the three T5 graphs, weights in .data files', async () => {
    const out = join(dir, 't5-lm');
    await mkdir(out);
    await writeFile(join(out, 'keep.txt'), 'not ours');
    const r = await qf(
      'export-onnx',
      model('blip2_t5_tiny'),
      '--out',
      out,
      '--part',
      'lm',
      '--fp16',
      '--external-data',
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const m = await manifestOf(out);
    expect(m.weights).toBe('float16');
    expect(m.parts.map((p) => [p.part, p.externalData])).toEqual([
      ['t5_encoder', 'blip2_t5_encoder.onnx.data'],
      ['t5_decoder_first', 'blip2_t5_decoder_first.onnx.data'],
      ['t5_decoder_step', 'blip2_t5_decoder_step.onnx.data'],
    ]);
    expect(r.stdout).toContain('+ blip2_t5_encoder.onnx.data');
    expect(await readFile(join(out, 'keep.txt'), 'utf8')).toBe('not ours');
    expect((await readdir(out)).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  it('without --part a whole-model directory still exports only its Q-Former query part', async () => {
    const out = join(dir, 'default');
    const r = await qf('export-onnx', model('blip2_t5_tiny'), '--out', out);
    expect(r.code, r.stderr).toBe(0);
    expect(
      JSON.parse(await readFile(join(out, 'qformer_onnx.json'), 'utf8')).parts.map(
        (p: { part: string }) => p.part,
      ),
    ).toEqual(['query']);
    expect(existsSync(join(out, 'manifest.json'))).toBe(false);
  });
});

describe('qf export-onnx whole-model errors (exit 1, typed message, nothing written)', () => {
  async function fails(args: string[], out: string): Promise<string> {
    const r = await qf('export-onnx', ...args, '--out', out);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(existsSync(out)).toBe(false);
    return r.stderr;
  }

  it('whole-model parts on a checkpoint without vision tower and LM', async () => {
    const err = await fails([join(publicSmall, 'hf'), '--part', 'lm'], join(dir, 'e1'));
    expect(err).toContain(
      'error [CLI_BAD_OPTION]: --part: unknown part "lm" (expected one of query, text, multimodal, full, rerank) for this checkpoint: vision, qformer_projector, lm, all need a whole BLIP-2 / InstructBLIP model directory',
    );
  });

  it('Q-Former and whole-model parts together', async () => {
    const err = await fails([model('blip2_opt_tiny'), '--part', 'query,vision'], join(dir, 'e2'));
    expect(err).toContain(
      'error [CLI_BAD_OPTION]: --part: Q-Former parts (query) and whole-model parts (vision) cannot be exported together',
    );
  });

  it('an unknown name next to whole-model parts', async () => {
    const err = await fails([model('blip2_opt_tiny'), '--part', 'vision,decoder'], join(dir, 'e3'));
    expect(err).toContain(
      'error [CLI_BAD_OPTION]: --part: unknown part "decoder" (expected one of query, text, multimodal, full, rerank; for a whole BLIP-2 / InstructBLIP model directory: vision, qformer_projector, lm, all)',
    );
  });

  it('an LM part of the other LM kind', async () => {
    const err = await fails([model('blip2_opt_tiny'), '--part', 't5_encoder'], join(dir, 'e4'));
    expect(err).toContain(
      'error [ONNX_EXPORT]: part "t5_encoder" does not exist here: the language model is decoder-only',
    );
  });

  it('--int8 and --image-mask are Q-Former options', async () => {
    expect(await fails([model('blip2_opt_tiny'), '--part', 'vision', '--int8'], join(dir, 'e5'))).toContain(
      'error [CLI_BAD_OPTION]: --int8 applies to the Q-Former parts only',
    );
    expect(
      await fails([model('blip2_opt_tiny'), '--part', 'all', '--image-mask'], join(dir, 'e6')),
    ).toContain('error [CLI_BAD_OPTION]: --image-mask applies to the Q-Former parts only');
  });

  it('--strict with a checkpoint tensor no part reads', async () => {
    const src = model('blip2_t5_tiny');
    const extra = join(dir, 'extra-tensor');
    await mkdir(extra);
    const tensors = await readAll(join(src, 'model.safetensors'));
    tensors['unused.weight'] = { dtype: 'F32', shape: [2], data: Float32Array.of(1, 2) };
    await writeSafetensorsFile(join(extra, 'model.safetensors'), tensors);
    await writeFile(join(extra, 'config.json'), await readFile(join(src, 'config.json')));
    const err = await fails([extra, '--part', 'all', '--strict'], join(dir, 'e7'));
    expect(err).toContain('error [TENSOR_UNEXPECTED]: tensor "unused.weight"');
    const ok = await qf('export-onnx', extra, '--out', join(dir, 'e7-ok'), '--part', 'vision');
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).toBe(
      'note: 1 checkpoint tensor(s) not used by any part (e.g. unused.weight); --strict makes this an error\n',
    );
  });
});
