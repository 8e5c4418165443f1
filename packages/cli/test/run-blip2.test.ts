import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type HostTensor, toInt32 } from '@qf/io';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectClose, goldenDir, qf, readAll, requireDir, tempDir, writeInputs } from './helpers.js';

/**
 * `qf run` on whole BLIP-2 / InstructBLIP directories: inputs with `pixel_values` run the whole model
 * (vision tower, Q-Former, projector, LM) and every output is checked against HF transformers 4.47
 * (golden `blip2_opt_tiny`, `blip2_t5_tiny`, `instructblip_tiny`) within 1e-4; `--generate 5` gives
 * HF's greedy `generate` sequences. Inputs with `image_embeds` keep running the Q-Former alone
 * (run-golden.test.ts).
 */
const CASES = ['blip2_opt_tiny', 'blip2_t5_tiny', 'instructblip_tiny'] as const;
const ints = (t: HostTensor | undefined) => Array.from(toInt32(t as HostTensor, 'ids'));

interface Case {
  readonly modelDir: string;
  readonly inputsFile: string;
  readonly inputs: Record<string, HostTensor>;
  readonly expected: Record<string, HostTensor>;
}

const cases = new Map<string, Case>();
let out: string;
beforeAll(async () => {
  out = await tempDir('qf-run-blip2-');
  for (const name of CASES) {
    const dir = requireDir(join(goldenDir, name));
    const inputs = await readAll(join(dir, 'inputs.safetensors'));
    const names = [
      'pixel_values',
      'input_ids',
      'attention_mask',
      'labels',
      'qformer_input_ids',
      'qformer_attention_mask',
    ];
    const inputsFile = await writeInputs(
      out,
      `${name}-in.safetensors`,
      Object.fromEntries(names.map((n) => [n, inputs[n]])),
    );
    cases.set(name, {
      modelDir: join(dir, 'hf'),
      inputsFile,
      inputs,
      expected: await readAll(join(dir, 'outputs.safetensors')),
    });
  }
});
const c = (name: string) => cases.get(name) as Case;

/** Outputs every case writes, with the golden tensor each is checked against. */
function goldenNames(name: string): Record<string, string> {
  const names: Record<string, string> = {
    vision_output: 'vision.last_hidden_state',
    language_projection: 'language_projection.output',
    inputs_embeds: 'lm.inputs_embeds',
    lm_attention_mask: 'lm.attention_mask',
    logits: 'lm.logits',
    loss: 'lm.loss',
  };
  if (name === 'instructblip_tiny') names['qformer_output'] = 'qformer.last_hidden_state';
  else names['query_output'] = 'qformer.last_hidden_state';
  if (name !== 'blip2_opt_tiny') names['encoder_last_hidden_state'] = 'lm.encoder_last_hidden_state';
  return names;
}

for (const name of CASES) {
  for (const backend of name === 'blip2_opt_tiny'
    ? (['tfjs-cpu', 'onnx'] as const)
    : (['tfjs-cpu'] as const)) {
    describe(`qf run on the whole golden ${name} (${backend})`, () => {
      it('writes every output from pixel_values, matching HF; --generate 5 gives HF generate', async () => {
        const file = join(out, `${name}-${backend}.safetensors`);
        const r = await qf(
          'run',
          c(name).modelDir,
          '-i',
          c(name).inputsFile,
          '-o',
          file,
          '--generate',
          '5',
          '--backend',
          backend,
        );
        expect(r.code, r.stderr).toBe(0);
        expect(r.stderr).toBe('');
        const got = await readAll(file);
        for (const [output, golden] of Object.entries(goldenNames(name))) {
          expectClose(`${output} vs ${golden}`, got[output], c(name).expected[golden]);
          expect(r.stdout).toContain(output);
        }
        expect(got['query_output']?.shape).toEqual([2, 4, 64]);
        expect(got['logits']?.dtype).toBe('F32');
        expect(got['lm_attention_mask']?.dtype).toBe('I64');
        expect(got['generated_ids']?.dtype).toBe('I64');
        expect(got['generated_ids']?.shape).toEqual(c(name).expected['generate.sequences']?.shape);
        expect(ints(got['generated_ids'])).toEqual(ints(c(name).expected['generate.sequences']));
        expect(r.stdout).toContain(`wrote ${Object.keys(got).length} outputs to ${file}`);
      });
    });
  }
}

describe('qf run on whole models: hidden states, image-only inputs and errors', () => {
  it('--hidden-states adds vision and Q-Former layers (InstructBLIP: queries + instruction)', async () => {
    const file = join(out, 'hidden.safetensors');
    const r = await qf(
      'run',
      c('instructblip_tiny').modelDir,
      '-i',
      c('instructblip_tiny').inputsFile,
      '-o',
      file,
      '--hidden-states',
    );
    expect(r.code, r.stderr).toBe(0);
    const got = await readAll(file);
    const want = c('instructblip_tiny').expected;
    for (let i = 0; i <= 2; i++) {
      expectClose(
        `vision_hidden_states.${i}`,
        got[`vision_hidden_states.${i}`],
        want[`vision.hidden_states.${i}`],
      );
      expectClose(
        `qformer_hidden_states.${i}`,
        got[`qformer_hidden_states.${i}`],
        want[`qformer.hidden_states.${i}`],
      );
    }
  });

  it('pixel_values alone give the image side only', async () => {
    const inputs = await writeInputs(out, 'pixels.safetensors', {
      pixel_values: c('blip2_t5_tiny').inputs['pixel_values'],
    });
    const file = join(out, 'pixels-out.safetensors');
    const r = await qf('run', c('blip2_t5_tiny').modelDir, '-i', inputs, '-o', file, '--generate', '5');
    expect(r.code, r.stderr).toBe(0);
    const got = await readAll(file);
    expect(Object.keys(got).sort()).toEqual([
      'generated_ids',
      'language_projection',
      'query_output',
      'vision_output',
    ]);
    expectClose(
      'language_projection',
      got['language_projection'],
      c('blip2_t5_tiny').expected['language_projection.output'],
    );
    expect(ints(got['generated_ids'])).toEqual(
      ints(c('blip2_t5_tiny').expected['generate_noprompt.sequences']),
    );
  });

  it('names bad inputs and options, and writes nothing', async () => {
    const cases: [string, string, Record<string, HostTensor | undefined>, string[], RegExp][] = [
      [
        'instructblip_tiny',
        'noinstr',
        { pixel_values: c('instructblip_tiny').inputs['pixel_values'] },
        [],
        /error \[TENSOR_MISSING\]: tensor "qformer_input_ids": InstructBLIP needs the instruction ids/,
      ],
      [
        'blip2_opt_tiny',
        'embeds',
        { image_embeds: c('blip2_opt_tiny').expected['vision.last_hidden_state'] },
        ['--generate', '3'],
        /error \[CLI_BAD_OPTION\]: --generate needs a whole BLIP-2/,
      ],
      [
        'blip2_opt_tiny',
        'batch',
        {
          pixel_values: c('blip2_opt_tiny').inputs['pixel_values'],
          input_ids: { ...(c('blip2_opt_tiny').inputs['input_ids'] as HostTensor), shape: [1, 12] }, // 2 x 6 ids as one row
        },
        [],
        /error \[TENSOR_SHAPE\]: tensor "input_ids": batch size differs .*expected \[2, T\], got \[1, 12\]/,
      ],
    ];
    for (const [name, tag, tensors, extra, text] of cases) {
      const inputs = await writeInputs(out, `${tag}-in.safetensors`, tensors);
      const file = join(out, `${tag}-out.safetensors`);
      const r = await qf('run', c(name).modelDir, '-i', inputs, '-o', file, ...extra);
      expect(r.code, tag).toBe(1);
      expect(r.stderr).toMatch(text);
      expect(existsSync(file)).toBe(false);
    }
    const qformerOnly = await qf(
      'run',
      join(goldenDir, 'public_small', 'hf'),
      '-i',
      c('blip2_opt_tiny').inputsFile,
      '-o',
      join(out, 'x.safetensors'),
    );
    expect(qformerOnly.code).toBe(1);
    expect(qformerOnly.stderr).toMatch(/error \[BLIP2_NOT_A_FULL_MODEL\]/);
  });
});
