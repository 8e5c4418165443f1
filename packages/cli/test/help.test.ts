import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { VERSION } from '../src/version.js';
import { qf, repoRoot } from './helpers.js';

describe('qf --help and --version', () => {
  it('--version prints the package version', async () => {
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'packages/cli/package.json'), 'utf8'));
    expect(VERSION).toBe(pkg.version);
    const r = await qf('--version');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${pkg.version}\n`);
  });

  it('qf --help lists every command with examples', async () => {
    const r = await qf('--help');
    expect(r.code).toBe(0);
    for (const cmd of ['run', 'inspect', 'demo', 'export-onnx'])
      expect(r.stdout).toMatch(new RegExp(`^  ${cmd} `, 'm'));
    expect(r.stdout).toContain('Examples:');
  });

  for (const [cmd, words] of [
    [
      'run',
      [
        '--inputs',
        '--out',
        '--backend',
        'onnx',
        '--threads',
        'onnxruntime-node',
        '--strict',
        '--hidden-states',
        'image_embeds [B,N,E]',
        'itc_logits',
      ],
    ],
    ['inspect', ['--json', 'layout', 'model directory']],
    [
      'demo',
      [
        '--out',
        '--backend',
        '--workers',
        '--seed',
        '--batch',
        '--json',
        '--quick',
        'untrained',
        'qf-demo-out',
      ],
    ],
    [
      'export-onnx',
      [
        '<model-dir>',
        '--out <dir>',
        '--part <name...>',
        'query, text, multimodal, full',
        '--fp16',
        '--int8',
        '--external-data',
        '--image-mask',
        '--strict',
        'qformer_onnx.json',
        'image_embeds [batch, num_image_tokens, E]',
        'multimodal_output, itm_logits, itc_logits',
        'opset 17',
        'leaves nothing behind',
      ],
    ],
  ] as const) {
    it(`qf ${cmd} --help has a description, its options and an example`, async () => {
      const r = await qf(cmd, '--help');
      expect(r.code).toBe(0);
      expect(r.stderr).toBe('');
      expect(r.stdout).toContain(`Usage: qf ${cmd}`);
      expect(r.stdout).toContain('Examples:');
      expect(r.stdout).toContain(`$ qf ${cmd}`);
      for (const w of words) expect(r.stdout).toContain(w);
    });
  }

  it('qf help <command> works too', async () => {
    const r = await qf('help', 'inspect');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: qf inspect');
  });
});
