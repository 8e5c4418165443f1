import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openSafetensors } from '@qf/io/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LaunchedChromium, chromiumAvailable, launchChromium } from '../../browser/tools/chromium.js';
// @ts-expect-error plain ESM helpers of the example, no type declarations
import { buildPage } from '../build.mjs';
// @ts-expect-error plain ESM helpers of the example, no type declarations
import { serve } from '../serve.mjs';

/**
 * The browser example in headless Chromium (Debian's /usr/bin/chromium; .ci/run installs it; launched
 * by the browser examples' shared helper, which also blocks every request that is not to
 * localhost): the page loads the HF reference checkpoint over HTTP range requests and its outputs
 * must match HF.
 */
const here = fileURLToPath(new URL('.', import.meta.url));
const golden = resolve(here, '../../../../shared/golden/public_small');
const available = chromiumAvailable();

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
  let browser: LaunchedChromium;
  /** Base URLs of two servers of the same files: plain, and cross-origin isolated (COOP/COEP). */
  const baseUrl = { plain: '', isolated: '' };
  const servers: { close(): void }[] = [];
  const outDir = mkdtempSync(join(tmpdir(), 'qf-browser-'));

  beforeAll(async () => {
    const dist = await buildPage(join(outDir, 'dist'));
    const routes = {
      '/model/': join(golden, 'hf'),
      '/inputs.safetensors': join(golden, 'inputs.safetensors'),
      '/dist/': dist,
      '/': resolve(here, '../index.html'),
    };
    for (const isolate of [false, true]) {
      const { server, url } = await serve({ routes, isolate });
      servers.push(server);
      baseUrl[isolate ? 'isolated' : 'plain'] = url;
    }
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    for (const server of servers) server.close();
    rmSync(outDir, { recursive: true, force: true });
  });

  // query -> the backend name the page reports (tfjs backends are prefixed `tfjs-`), and whether the
  // page is served cross-origin isolated (SharedArrayBuffer, so ORT can run wasm threads).
  const cases: { query: string; name: string; isolated?: true; status?: RegExp }[] = [
    { query: 'backend=wasm', name: 'tfjs-wasm' },
    { query: 'backend=cpu', name: 'tfjs-cpu' },
    { query: 'backend=webgl', name: 'tfjs-webgl' },
    // ONNX Runtime Web: the model is traced to ONNX in the page and run by ORT's wasm EP.
    { query: 'backend=onnx-wasm', name: 'onnx-wasm', status: /, 1 wasm thread\)$/ },
    {
      query: 'backend=onnx-wasm&threads=2',
      name: 'onnx-wasm',
      isolated: true,
      status: /, 2 wasm threads\)$/,
    },
  ];
  for (const { query, name, isolated, status } of cases) {
    const title = `${name}${isolated ? ' (cross-origin isolated, 2 threads)' : ''}`;
    it(`${title}: the page's outputs match HF transformers`, async () => {
      const page = await browser.context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(`console: ${m.text()}`);
      });
      await page.goto(`${baseUrl[isolated ? 'isolated' : 'plain']}/?${query}`);
      await page.waitForFunction(() => window.qfResult !== undefined, undefined, { timeout: 60_000 });
      const result = await page.evaluate(() => window.qfResult!);
      expect(result.error, result.error).toBeUndefined();
      expect(errors).toEqual([]);
      expect(result.backend).toBe(name);
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
      const text = await page.textContent('#status');
      expect(text).toMatch(new RegExp(`^backend ${name}: Q-Former ran in`));
      if (status) expect(text).toMatch(status);
      expect(browser.blocked, 'requests beyond localhost').toEqual([]);
      await page.close();
    });
  }
});
