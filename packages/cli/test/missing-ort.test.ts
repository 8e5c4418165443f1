import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { publicSmall, qf, requireDir, tempDir } from './helpers.js';

// This file only: onnxruntime-node fails to load, as when its native binary is missing.
vi.mock('onnxruntime-node', () => {
  throw new Error('Cannot find module onnxruntime_binding.node');
});

describe('--backend onnx without a loadable onnxruntime-node', () => {
  it('is a typed error naming the package; nothing is written; export-onnx still works', async () => {
    const dir = await tempDir();
    const out = join(dir, 'out.safetensors');
    const model = join(requireDir(publicSmall), 'hf');
    const r = await qf('run', model, '-i', join(publicSmall, 'inputs.safetensors'), '-o', out, '-b', 'onnx');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^error \[CLI_MISSING_DEPENDENCY\]: --backend onnx needs onnxruntime-node, which could not be loaded: /,
    );
    expect(existsSync(out)).toBe(false);
    // exporting needs no runtime
    const e = await qf('export-onnx', model, '--out', join(dir, 'onnx'), '--part', 'query');
    expect(e.code, e.stderr).toBe(0);
  });
});
