import { readFileSync, readdirSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OnnxBackendError, type Sym, createOnnxBackend } from '@qf/backends/onnx';
import {
  type Blip2OnnxManifest,
  exportBlip2OnnxFromDir,
  loadBlip2ForOnnx,
  openBlip2Onnx,
  writeBlip2Onnx,
} from '@qf/backends/onnx/node';
import { optPositionIds, softPromptMask } from '@qf/bridge';
import { type HostTensor, toInt32 } from '@qf/io';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runOnnxFile } from '../../../test-utils/onnx-file.js';
import { expectClose, goldenDir, maxAbsDiff, readAll, requireDir } from './helpers.js';

/**
 * A whole BLIP-2 / InstructBLIP exported as separate ONNX graphs (vision, Q-Former + projector, LM
 * prefill/step or T5 encoder/decoder), loaded into fresh onnxruntime-node sessions and checked against
 * HF transformers (golden cases, fp32, abs 1e-4), including greedy generation run from the files.
 */
const CASES = ['blip2_opt_tiny', 'blip2_t5_tiny', 'instructblip_tiny'] as const;

/**
 * fp16 weights: every float parameter is rounded to float16 (relative error up to 2^-11 = 4.9e-4 per
 * weight) while compute stays float32, so outputs move by an amount that grows with depth and scale.
 * Measured against the fp32 golden outputs (values up to 4 for hidden states, 13.6 for scores):
 * vision_output <= 2.1e-3, soft prompt <= 2.6e-3, first-step scores <= 8.1e-3, all 5 steps' scores
 * <= 2.3e-2. FP16_TOL bounds the first three with ~2.5x margin, FP16_SCORES_TOL the last. The measured deviations stay below the smallest
 * top-1/top-2 margin of the `generate` runs (meta.json: 0.051 instructblip, 0.168 t5, 1.19 opt), so the
 * fp16 files give the golden sequences on these cases (checked; a property of these cases, not a
 * guarantee of fp16 in general).
 */
const FP16_TOL = 2e-2;
const FP16_SCORES_TOL = 5e-2;

const ints = (t: HostTensor | undefined): number[] => Array.from(toInt32(t as HostTensor, 't'));

/** Columns [0, k) of a [B, T] int tensor. */
function firstColumns(t: HostTensor, k: number): HostTensor<'I32'> {
  const [b, n] = t.shape as [number, number];
  const d = toInt32(t, 't');
  const out = new Int32Array(b * k);
  for (let r = 0; r < b; r++) out.set(d.subarray(r * n, r * n + k), r * k);
  return { dtype: 'I32', shape: [b, k], data: out };
}

/** The [B, V] rows at position `pos` of a [B, S, V] tensor. */
function atPosition(t: HostTensor, pos: number): HostTensor<'F32'> {
  const [b, s, v] = t.shape as [number, number, number];
  const d = t.data as Float32Array;
  const out = new Float32Array(b * v);
  for (let r = 0; r < b; r++) out.set(d.subarray((r * s + pos) * v, (r * s + pos + 1) * v), r * v);
  return { dtype: 'F32', shape: [b, v], data: out };
}

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'qf-blip2-onnx-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

for (const name of CASES) {
  describe(`BLIP-2 ONNX export (${name}): files vs HF transformers`, () => {
    const caseDir = requireDir(join(goldenDir, name));
    const decoderOnly = name === 'blip2_opt_tiny';
    const instruct = name === 'instructblip_tiny';
    let dir: string;
    let manifest: Blip2OnnxManifest;
    let inputs: Record<string, HostTensor>;
    let expected: Record<string, HostTensor>;
    const file = (part: string) => join(dir, `blip2_${part}.onnx`);
    const instruction = () =>
      instruct
        ? {
            qformer_input_ids: inputs['qformer_input_ids'],
            qformer_attention_mask: inputs['qformer_attention_mask'],
          }
        : {};

    beforeAll(async () => {
      dir = join(root, name, 'f32');
      manifest = await exportBlip2OnnxFromDir(join(caseDir, 'hf'), dir);
      inputs = await readAll(join(caseDir, 'inputs.safetensors'));
      expected = await readAll(join(caseDir, 'outputs.safetensors'));
    });

    it('writes one file per part and a manifest with names, dims and the config', () => {
      const lmParts = decoderOnly
        ? ['lm_prefill', 'lm_step']
        : ['t5_encoder', 't5_decoder_first', 't5_decoder_step'];
      expect(manifest.parts.map((p) => p.part)).toEqual(['vision', 'qformer_projector', ...lmParts]);
      expect(readdirSync(dir).sort()).toEqual([...manifest.parts.map((p) => p.file), 'manifest.json'].sort());
      const onDisk = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
      expect(onDisk.format).toBe('qformer-ts-blip2-onnx/1');
      expect(onDisk.modelType).toBe(instruct ? 'instructblip' : 'blip-2');
      const part = (p: string) => manifest.parts.find((x) => x.part === p);
      expect(part('vision')?.inputs).toEqual([
        expect.objectContaining({ name: 'pixel_values', dtype: 'float32', dims: ['batch', 3, 32, 32] }),
      ]);
      expect(part('vision')?.outputs.map((o) => [o.name, o.dims])).toEqual([
        ['vision_output', ['batch', 17, 48]],
      ]);
      expect(part('qformer_projector')?.inputs.map((i) => i.name)).toEqual(
        instruct ? ['image_embeds', 'qformer_input_ids', 'qformer_attention_mask'] : ['image_embeds'],
      );
      expect(part('qformer_projector')?.outputs.map((o) => [o.name, o.dims])).toEqual([
        ...(instruct ? [['qformer_output', ['batch', '4+instruction_length', 64]]] : []),
        ['query_output', ['batch', 4, 64]],
        ['language_projection', ['batch', 4, 40]],
      ]);
      if (decoderOnly) {
        expect(part('lm_step')?.inputs.map((i) => `${i.name}:${i.dims.join('x')}`)).toEqual([
          'lm_input_ids:batchx1',
          'lm_attention_mask:batchxpast_length+1',
          'position_ids:batchx1',
          ...[0, 1].flatMap((i) => [
            `past_key.${i}:batchx4xpast_lengthx10`,
            `past_value.${i}:batchx4xpast_lengthx10`,
          ]),
        ]);
        expect(part('lm_prefill')?.outputs[0]).toMatchObject({ name: 'logits', dims: ['batch', 120] });
        expect(manifest.specialTokens).toEqual({ bos: 2, eos: [108], pad: 1 });
      } else {
        expect(part('t5_decoder_step')?.outputs.map((o) => o.name)).toEqual([
          'logits',
          ...[0, 1].flatMap((i) => [`present.${i}.key`, `present.${i}.value`]),
        ]);
        expect(manifest.specialTokens.decoderStart).toBe(0);
      }
      for (const p of manifest.parts)
        for (const io of [...p.inputs, ...p.outputs]) expect(io.doc, `${p.part} ${io.name}`).toBeTruthy();
      expect(manifest.config.qformer).toEqual({
        numQueryTokens: 4,
        hiddenSize: 64,
        numHiddenLayers: 2,
        instruction: instruct,
      });
      expect(manifest.preprocessing.mean).toEqual([0.48145466, 0.4578275, 0.40821073]);
    });

    it('vision file: pixel_values -> vision_output matches vision.last_hidden_state', async () => {
      const r = await runOnnxFile(file('vision'), { pixel_values: inputs['pixel_values'] });
      expect(r.outputNames).toEqual(['vision_output']);
      expectClose('vision_output', r.outputs['vision_output'], expected['vision.last_hidden_state']);
    });

    it('qformer_projector file matches qformer.last_hidden_state and language_projection.output', async () => {
      const r = await runOnnxFile(file('qformer_projector'), {
        image_embeds: expected['vision.last_hidden_state'],
        qformer_input_ids: inputs['qformer_input_ids'],
        qformer_attention_mask: inputs['qformer_attention_mask'],
      });
      // InstructBLIP: the whole [queries ; instruction] output, and its first Q rows as query_output.
      const whole = instruct ? 'qformer_output' : 'query_output';
      expectClose(whole, r.outputs[whole], expected['qformer.last_hidden_state']);
      expect(r.outputs['query_output']?.shape).toEqual([2, 4, 64]);
      expectClose(
        'language_projection',
        r.outputs['language_projection'],
        expected['language_projection.output'],
      );
    });

    if (decoderOnly) {
      it('lm_prefill file: last-position logits match lm.logits at every text position', async () => {
        const soft = expected['language_projection.output'] as HostTensor;
        const q = soft.shape[1] as number;
        const t = inputs['input_ids']?.shape[1] as number;
        for (let k = 1; k <= t; k++) {
          const mask = softPromptMask(q, firstColumns(inputs['attention_mask'] as HostTensor, k));
          const r = await runOnnxFile(file('lm_prefill'), {
            soft_prompt: soft,
            lm_input_ids: firstColumns(inputs['input_ids'] as HostTensor, k),
            lm_attention_mask: mask,
            position_ids: optPositionIds(mask, 'forward'),
          });
          expectClose(
            `logits at ${q + k - 1}`,
            r.outputs['logits'],
            atPosition(expected['lm.logits'] as HostTensor, q + k - 1),
          );
          expect(r.outputs['present_key.1']?.shape).toEqual([2, 4, q + k, 10]);
        }
      });
    } else {
      it('t5_encoder + t5_decoder_first files match the encoder state and lm.logits (teacher-forced)', async () => {
        const mask = expected['lm.attention_mask'] as HostTensor;
        const enc = await runOnnxFile(file('t5_encoder'), {
          soft_prompt: expected['language_projection.output'],
          lm_input_ids: inputs['input_ids'],
          attention_mask: mask,
        });
        expectClose(
          'encoder_last_hidden_state',
          enc.outputs['encoder_last_hidden_state'],
          expected['lm.encoder_last_hidden_state'],
        );
        const dec = await runOnnxFile(file('t5_decoder_first'), {
          ...enc.outputs,
          decoder_input_ids: expected['lm.decoder_input_ids'],
          encoder_attention_mask: mask,
        });
        expectClose('logits', dec.outputs['logits'], expected['lm.logits']);
      });
    }

    const runs = decoderOnly
      ? (['generate', 'generate_left', 'generate_noprompt'] as const)
      : (['generate', 'generate_noprompt'] as const);
    for (const run of runs) {
      it(`greedy generation from the files reproduces ${run}.sequences and ${run}.scores`, async () => {
        const runner = await openBlip2Onnx(dir, { ort, intraOpNumThreads: 1 });
        try {
          const prompt =
            run === 'generate'
              ? { input_ids: inputs['input_ids'], attention_mask: inputs['attention_mask'] }
              : run === 'generate_left'
                ? {
                    input_ids: inputs['gen_left.input_ids'],
                    attention_mask: inputs['gen_left.attention_mask'],
                  }
                : {};
          const res = await runner.generate(
            { pixel_values: inputs['pixel_values'] as HostTensor, ...prompt, ...instruction() },
            { maxNewTokens: 5 },
          );
          expect(ints(res.sequences)).toEqual(ints(expected[`${run}.sequences`]));
          expect(res.sequences.shape).toEqual(expected[`${run}.sequences`]?.shape);
          expectClose(`${run}.scores`, res.scores, expected[`${run}.scores`]);
          expect(runner.backend.sessionCount).toBe(manifest.parts.length);
        } finally {
          await runner.dispose();
        }
        expect(runner.backend.sessionCount).toBe(0);
        await expect(runner.vision(inputs['pixel_values'] as HostTensor)).rejects.toThrow(OnnxBackendError);
      });
    }

    it('fp16 weights: half the bytes; loads, runs and stays within the fp16 rounding bound', async () => {
      const f16 = join(root, name, 'f16');
      const m = await exportBlip2OnnxFromDir(join(caseDir, 'hf'), f16, { weights: 'float16' });
      expect(m.weights).toBe('float16');
      const size = (d: string, f: string) => statSync(join(d, f)).size;
      const bytes = (d: string) => m.parts.reduce((n, p) => n + size(d, p.file), 0);
      expect(bytes(f16) / bytes(dir)).toBeLessThan(0.6);
      const runner = await openBlip2Onnx(f16, { ort, intraOpNumThreads: 1 });
      try {
        const vision = await runner.vision(inputs['pixel_values'] as HostTensor);
        const dv = maxAbsDiff(vision, expected['vision.last_hidden_state'] as HostTensor);
        expect(dv).toBeGreaterThan(0); // really fp16-rounded
        expect(dv).toBeLessThan(FP16_TOL);
        const image = await runner.encodeImage({
          pixel_values: inputs['pixel_values'] as HostTensor,
          ...instruction(),
        });
        const soft = image['language_projection'] as HostTensor;
        expect(maxAbsDiff(soft, expected['language_projection.output'] as HostTensor)).toBeLessThan(FP16_TOL);
        const res = await runner.generate(
          {
            pixel_values: inputs['pixel_values'] as HostTensor,
            input_ids: inputs['input_ids'],
            attention_mask: inputs['attention_mask'],
            ...instruction(),
          },
          { maxNewTokens: 5 },
        );
        // The first step's scores depend on no sampled token, so they compare directly.
        const first = (t: HostTensor) => atPosition(t, 0);
        expect(maxAbsDiff(first(res.scores), first(expected['generate.scores'] as HostTensor))).toBeLessThan(
          FP16_TOL,
        );
        expect(maxAbsDiff(res.scores, expected['generate.scores'] as HostTensor)).toBeLessThan(
          FP16_SCORES_TOL,
        );
        expect(ints(res.sequences)).toEqual(ints(expected['generate.sequences']));
      } finally {
        await runner.dispose();
      }
    });
  });
}

describe('BLIP-2 ONNX export: determinism and memory', () => {
  const hf = join(requireDir(join(goldenDir, 'blip2_t5_tiny')), 'hf');

  it('a second export of the same model is byte-identical', async () => {
    const a = join(root, 'det', 'a');
    const b = join(root, 'det', 'b');
    await exportBlip2OnnxFromDir(hf, a);
    await exportBlip2OnnxFromDir(hf, b);
    const files = readdirSync(a).sort();
    expect(readdirSync(b).sort()).toEqual(files);
    for (const f of files) expect(readFileSync(join(b, f)).equals(readFileSync(join(a, f))), f).toBe(true);
  });

  it('exports by recording only: no session is opened, and dispose frees every parameter', async () => {
    const backend = createOnnxBackend({ ort, intraOpNumThreads: 1 });
    const src = await loadBlip2ForOnnx(backend, hf);
    const m = await writeBlip2Onnx(src, join(root, 'mem'), { parts: ['vision', 'lm'] });
    expect(m.parts.map((p) => p.part)).toEqual([
      'vision',
      't5_encoder',
      't5_decoder_first',
      't5_decoder_step',
    ]);
    expect(backend.sessionCount).toBe(0);
    const names = src.params.names();
    expect(names.length).toBeGreaterThan(50);
    await backend.dispose();
    const live = names.filter((n) => (src.params.get(n) as Sym).param?.data !== undefined);
    expect(live).toEqual([]);
    await expect(writeBlip2Onnx(src, join(root, 'mem2'))).rejects.toThrow(/disposed/);
  });

  it('rejects a Q-Former-only checkpoint, missing tensors and an unknown part with typed errors, writing nothing', async () => {
    const out = join(root, 'bad');
    // A bare Q-Former config (model_type blip_2_qformer) with the public_small weights.
    const bare = join(root, 'bare-qformer');
    await mkdir(bare);
    const full = JSON.parse(readFileSync(join(goldenDir, 'public_small', 'hf', 'config.json'), 'utf8'));
    await writeFile(
      join(bare, 'config.json'),
      JSON.stringify({ ...full.qformer_config, model_type: 'blip_2_qformer' }),
    );
    await symlink(
      join(goldenDir, 'public_small', 'hf', 'model.safetensors'),
      join(bare, 'model.safetensors'),
    );
    await expect(exportBlip2OnnxFromDir(bare, out)).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    // A retrieval checkpoint: a BLIP-2 config, but no vision tower or LM weights.
    await expect(exportBlip2OnnxFromDir(join(goldenDir, 'public_small', 'hf'), out)).rejects.toMatchObject({
      code: 'BLIP2_NOT_A_FULL_MODEL',
    });
    await expect(exportBlip2OnnxFromDir(hf, out, { parts: ['lm_prefill'] })).rejects.toThrow(
      /part "lm_prefill" does not exist here: the language model is encoder-decoder/,
    );
    expect(() => statSync(out)).toThrow();
  });
});
