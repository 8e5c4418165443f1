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
    for (const cmd of ['run', 'inspect', 'demo']) expect(r.stdout).toMatch(new RegExp(`^  ${cmd} `, 'm'));
    expect(r.stdout).toContain('Examples:');
  });

  for (const [cmd, words] of [
    [
      'run',
      ['--inputs', '--out', '--backend', '--strict', '--hidden-states', 'image_embeds [B,N,E]', 'itc_logits'],
    ],
    ['inspect', ['--json', 'layout', 'model directory']],
    ['demo', ['--out', '--backend', '--seed', '--batch', 'untrained', 'qf-demo-out']],
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
