import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { HostTensor } from '@qf/io';
import { openSafetensors } from '@qf/io/node';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  expectClose,
  maxAbsDiff,
  publicSmall,
  qf,
  readAll,
  requireDir,
  writeInputs,
  goldenRunFixture,
} from './helpers.js';

/**
 * `qf run --backend onnx` beyond the golden comparisons of run-golden.test.ts: hidden states, threads,
 * partial inputs, I32 ids, metadata, and errors.
 */
const modelDir = join(requireDir(publicSmall), 'hf');
let inputs: Record<string, HostTensor>;
let expected: Record<string, HostTensor>;
let dir: string;
let unmaskedInputs: string;

beforeAll(async () => {
  ({ inputs, expected, dir, unmaskedInputs } = await goldenRunFixture());
});

describe('qf run --backend onnx', () => {
  it('--hidden-states: every layer of every pass matches HF', async () => {
    const out = join(dir, 'hidden.safetensors');
    const r = await qf('run', modelDir, '-i', unmaskedInputs, '-o', out, '--hidden-states', '-b', 'onnx');
    expect(r.code, r.stderr).toBe(0);
    const got = await readAll(out);
    for (let i = 0; i <= 4; i++) {
      for (const [ours, theirs] of [
        ['query', 'query_only'],
        ['text', 'text_only'],
        ['multimodal', 'multimodal'],
      ]) {
        expectClose(
          `${ours}_hidden_states.${i}`,
          got[`${ours}_hidden_states.${i}`],
          expected[`${theirs}.hidden_states.${i}`],
        );
      }
    }
  });

  it('--threads 1 gives the same outputs as the default (2) and says so', async () => {
    const one = join(dir, 'threads-1.safetensors');
    const two = join(dir, 'threads-2.safetensors');
    const r1 = await qf('run', modelDir, '-i', unmaskedInputs, '-o', one, '-b', 'onnx', '--threads', '1');
    const r2 = await qf('run', modelDir, '-i', unmaskedInputs, '-o', two, '-b', 'onnx');
    expect(r1.code, r1.stderr).toBe(0);
    expect(r2.code, r2.stderr).toBe(0);
    expect(r1.stdout).toContain('(onnx, 1 thread: load');
    expect(r2.stdout).toContain('(onnx, 2 threads: load');
    const a = await readAll(one);
    const b = await readAll(two);
    expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
    for (const k of Object.keys(a)) expect(maxAbsDiff(a[k]!, b[k]!), k).toBeLessThanOrEqual(1e-5);
  });

  it('image-only and text-only inputs with I32 ids; provenance in the metadata', async () => {
    const imageOnly = await writeInputs(dir, 'image-only.safetensors', {
      image_embeds: inputs['image_embeds'],
    });
    const out = join(dir, 'image-only-out.safetensors');
    const r = await qf('run', modelDir, '-i', imageOnly, '-o', out, '-b', 'onnx');
    expect(r.code, r.stderr).toBe(0);
    const got = await readAll(out);
    expect(Object.keys(got).sort()).toEqual(['image_feats', 'language_projection', 'query_output']);
    expectClose('query_output', got['query_output'], expected['query_only.last_hidden_state']);
    const file = await openSafetensors(out);
    expect(file.metadata['backend']).toBe('onnx');
    await file.close();

    const toI32 = (t: HostTensor): HostTensor => ({
      dtype: 'I32',
      shape: t.shape,
      data: Int32Array.from(t.data as BigInt64Array, (v) => Number(v)),
    });
    const textOnly = await writeInputs(dir, 'text-only.safetensors', {
      input_ids: toI32(inputs['input_ids']!),
      attention_mask: toI32(inputs['attention_mask']!),
    });
    const out2 = join(dir, 'text-only-out.safetensors');
    const r2 = await qf('run', modelDir, '-i', textOnly, '-o', out2, '-b', 'onnx');
    expect(r2.code, r2.stderr).toBe(0);
    const got2 = await readAll(out2);
    expect(Object.keys(got2).sort()).toEqual(['text_feat', 'text_output']);
    expectClose('text_output', got2['text_output'], expected['text_only.last_hidden_state']);
    expectClose('text_feat', got2['text_feat'], expected['itc.text_embeds']);
  });

  it('a bad input: the same typed error as on tfjs, exit 1, no output file', async () => {
    const narrow: HostTensor = { dtype: 'F32', shape: [2, 17, 40], data: new Float32Array(2 * 17 * 40) };
    const path = await writeInputs(dir, 'narrow.safetensors', { ...inputs, image_embeds: narrow });
    const out = join(dir, 'narrow-out.safetensors');
    const r = await qf('run', modelDir, '-i', path, '-o', out, '-b', 'onnx');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('error [TENSOR_SHAPE]: tensor "image_embeds"');
    expect(r.stderr).toContain('expected [B, N, 48], got [2, 17, 40]');
    expect(existsSync(out)).toBe(false);
  });

  it('--threads with a tfjs backend is a typed error; --threads 0 a usage error', async () => {
    const out = join(dir, 'never.safetensors');
    const r = await qf('run', modelDir, '-i', unmaskedInputs, '-o', out, '--threads', '4');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('error [CLI_BAD_OPTION]: --threads applies to --backend onnx only');
    const zero = await qf('run', modelDir, '-i', unmaskedInputs, '-o', out, '-b', 'onnx', '--threads', '0');
    expect(zero.code).toBe(1);
    expect(zero.stderr).toContain('expected an integer in 1..1024, got "0"');
    expect(existsSync(out)).toBe(false);
  });
});
