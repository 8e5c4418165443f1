import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openSafetensors } from '@qf/io/node';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error plain ESM helpers of the example, no type declarations
import { buildPage } from '../build.mjs';
// @ts-expect-error plain ESM helpers of the example, no type declarations
import { serve } from '../serve.mjs';

/**
 * The browser example in headless Chromium (Debian's /usr/bin/chromium; .ci/run installs it): the page
 * loads the HF reference checkpoint over HTTP range requests and its outputs must match HF.
 */
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const here = fileURLToPath(new URL('.', import.meta.url));
const golden = resolve(here, '../../../../shared/golden/public_small');
const available = existsSync(chromiumPath);
if (!available && process.env.CI)
  throw new Error(`CI needs Chromium at ${chromiumPath} (.ci/run installs it)`);

const pairs: [string, string][] = [
  ['query_output', 'query_only.last_hidden_state'],
  ['text_output', 'text_only.last_hidden_state'],
  ['multimodal_output', 'multimodal.last_hidden_state'],
  ['itm_logits', 'itm.logits_per_image'],
  ['itc_logits', 'itc.logits_per_image'],
  ['image_feats', 'itc.image_embeds'],
  ['text_feat', 'itc.text_embeds'],
  ['language_projection', 'language_projection.output'],
];

describe.skipIf(!available)('browser example in headless Chromium', () => {
  let browser: Browser;
  let baseUrl: string;
  let close: () => void;
  const outDir = mkdtempSync(join(tmpdir(), 'qf-browser-'));

  beforeAll(async () => {
    const dist = await buildPage(join(outDir, 'dist'));
    const { server, url } = await serve({
      routes: {
        '/model/': join(golden, 'hf'),
        '/inputs.safetensors': join(golden, 'inputs.safetensors'),
        '/dist/': dist,
        '/': resolve(here, '../index.html'),
      },
    });
    baseUrl = url;
    close = () => server.close();
    browser = await chromium.launch({
      executablePath: chromiumPath,
      args: [
        '--headless=new',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });
  afterAll(async () => {
    await browser?.close();
    close?.();
    rmSync(outDir, { recursive: true, force: true });
  });

  for (const backend of ['wasm', 'cpu', 'webgl']) {
    it(`tfjs-${backend}: the page's outputs match HF transformers`, async () => {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(`console: ${m.text()}`);
      });
      await page.goto(`${baseUrl}/?backend=${backend}`);
      await page.waitForFunction(() => window.qfResult !== undefined, undefined, { timeout: 60_000 });
      const result = await page.evaluate(() => window.qfResult!);
      expect(result.error, result.error).toBeUndefined();
      expect(errors).toEqual([]);
      expect(result.backend).toBe(`tfjs-${backend}`);
      const file = await openSafetensors(join(golden, 'outputs.safetensors'));
      for (const [ours, theirs] of pairs) {
        const expected = await file.read(theirs);
        const got = result.outputs[ours]!;
        expect(got.shape, ours).toEqual([...expected.shape]);
        const ref = expected.data as Float32Array;
        const maxDiff = got.data.reduce((m, v, i) => Math.max(m, Math.abs(v - ref[i]!)), 0);
        expect(maxDiff, `${ours} max abs diff`).toBeLessThanOrEqual(1e-4);
      }
      await file.close();
      expect(await page.textContent('#status')).toMatch(
        new RegExp(`backend tfjs-${backend}: Q-Former ran in`),
      );
      await page.close();
    });
  }
});
