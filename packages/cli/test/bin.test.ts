import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildCliIfStale } from './build.js';
import { expectClose, publicSmall, readAll, repoRoot, requireDir, tempDir, writeInputs } from './helpers.js';

const bin = join(repoRoot, 'packages/cli/dist/bin.js');

function node(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Builds first: the CLI and the workspace packages it imports, where their dist/ is missing or older
 * than their sources; then runs the built `qf` binary as a child process. QF_CLI_SKIP_BUILD=1 skips the
 * build and tests dist/ as it is.
 */
beforeAll(() => {
  if (!process.env.QF_CLI_SKIP_BUILD) buildCliIfStale(repoRoot);
});

describe('the built qf binary', () => {
  it('has a shebang and prints its version', () => {
    const r = node('--version');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('qf run: exit 0, output file matches the golden outputs, no tfjs banner on stderr', async () => {
    const dir = await tempDir();
    const inputs = await readAll(join(requireDir(publicSmall), 'inputs.safetensors'));
    const path = await writeInputs(dir, 'in.safetensors', {
      image_embeds: inputs['image_embeds'],
      input_ids: inputs['input_ids'],
      attention_mask: inputs['attention_mask'],
    });
    const out = join(dir, 'out.safetensors');
    const r = node('run', join(publicSmall, 'hf'), '--inputs', path, '--out', out);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('itc_logits');
    const expected = await readAll(join(publicSmall, 'outputs.safetensors'));
    const got = await readAll(out);
    expectClose('query_output', got['query_output'], expected['query_only.last_hidden_state']);
    expectClose('itm_logits', got['itm_logits'], expected['itm.logits_per_image']);
  });

  it('qf run --backend tfjs-wasm works from the build', async () => {
    const dir = await tempDir();
    const out = join(dir, 'out.safetensors');
    const r = node(
      'run',
      join(publicSmall, 'hf'),
      '-i',
      join(publicSmall, 'inputs.safetensors'),
      '-o',
      out,
      '-b',
      'tfjs-wasm',
    );
    expect(r.code, r.stderr).toBe(0);
    const expected = await readAll(join(publicSmall, 'outputs.safetensors'));
    expectClose(
      'query_output',
      (await readAll(out))['query_output'],
      expected['query_only_masked_image.last_hidden_state'],
    );
  });

  it('qf run --backend onnx loads onnxruntime-node from the build and matches the golden outputs', async () => {
    const dir = await tempDir();
    const out = join(dir, 'out.safetensors');
    const r = node(
      'run',
      join(publicSmall, 'hf'),
      '-i',
      join(publicSmall, 'inputs.safetensors'),
      '-o',
      out,
      '-b',
      'onnx',
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('(onnx, 2 threads: load');
    const expected = await readAll(join(publicSmall, 'outputs.safetensors'));
    const got = await readAll(out);
    expectClose('query_output', got['query_output'], expected['query_only_masked_image.last_hidden_state']);
    expectClose('text_feat', got['text_feat'], expected['itc.text_embeds']);
  });

  it('qf export-onnx from the build writes the parts and the manifest', async () => {
    const out = join(await tempDir(), 'onnx');
    const r = node('export-onnx', join(publicSmall, 'hf'), '--out', out, '--part', 'query', '--fp16');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`manifest: ${join(out, 'qformer_onnx.json')}`);
    expect(existsSync(join(out, 'qformer_query.onnx'))).toBe(true);
    const bad = node('export-onnx', join(publicSmall, 'hf'), '--out', out, '--part', 'vision');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('error [CLI_BAD_OPTION]: --part: unknown part "vision"');
  });

  it('qf run with a bad input: exit 1, typed message, no output file', async () => {
    const dir = await tempDir();
    const path = await writeInputs(dir, 'bad.safetensors', {
      image_embeds: { dtype: 'F32', shape: [1, 17, 47], data: new Float32Array(17 * 47) },
    });
    const out = join(dir, 'out.safetensors');
    const r = node('run', join(publicSmall, 'hf'), '--inputs', path, '--out', out);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('error [TENSOR_SHAPE]: tensor "image_embeds"');
    expect(existsSync(out)).toBe(false);
  });
});
