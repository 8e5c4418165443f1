import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const exampleDir = fileURLToPath(new URL('..', import.meta.url));

describe('examples/node-retrieval', () => {
  it('runs on the built packages and prints a ranking per image', () => {
    const out = execFileSync(process.execPath, ['index.mjs'], { cwd: exampleDir, encoding: 'utf8' });
    expect(out).toMatch(/backend tfjs-wasm; 2 images x 2 texts/);
    expect(
      out.match(/^image \d: ITC .* -> best text \d; ITM p\(match with text \d\) = 0\.\d{3}$/gm),
    ).toHaveLength(2);
  });
});
