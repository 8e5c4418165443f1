import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HostTensor } from '@qf/io';
import { openCheckpointDir, writeCheckpointDir } from '@qf/io/node';
import type { Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PageResult } from '../src/main.js';
import { type LaunchedChromium, chromiumAvailable, launchChromium } from '../tools/chromium.js';
import { writeFixtureCheckpoint } from '../tools/fixture-checkpoint.js';
// @ts-expect-error plain ESM helper, no type declarations
import { serve } from '../tools/serve.mjs';
import { type NodeReference, nodeReference } from './node-reference.js';

/**
 * The app in headless Chromium (Debian's /usr/bin/chromium, fresh profile, every request beyond
 * localhost aborted and failing the test), served cross-origin isolated: on every backend the page's
 * retrieval rankings, ITC/ITM scores, caption and attention maps must agree with Node's, computed
 * here with the Node packages on tfjs-cpu for the same inputs.
 *
 * Tolerances (absolute), from what float32 allows across runtimes: every backend computes in float32
 * but sums in a different order (tfjs-cpu in JS doubles per dot product, XNNPACK and ORT with SIMD
 * partial sums, WebGL/WebGPU in SwiftShader's shaders with their own exp/erf), through ~12 layers
 * (vision tower, Q-Former, projection). Cosine similarities and probabilities live in [-1, 1], so
 * 1e-4 is ~1000 float32 ulps: far above those rounding differences, far below the gaps that decide a
 * ranking. Rankings must be Node's order except where Node's own scores tie within the tolerance.
 * Captions (greedy token ids) must be identical.
 */
const TOL = { itc: 1e-4, itm: 1e-4, attention: 1e-4 };
const BACKENDS = ['tfjs-cpu', 'tfjs-wasm', 'tfjs-webgl', 'tfjs-webgpu', 'ort-wasm', 'ort-webgpu'] as const;
const INPUTS = { seed: 0, query: 2, gallerySize: 8, maxNewTokens: 16 };

const here = fileURLToPath(new URL('.', import.meta.url));
const exampleDir = resolve(here, '..');
const committed = join(exampleDir, 'public/checkpoint');
const outputDir = join(exampleDir, 'test-output');
const available = chromiumAvailable();

/** A copy of the model directory `src` split into shards of at most `maxShardBytes` (tokenizers kept). */
async function reshard(src: string, dst: string, maxShardBytes: number): Promise<string> {
  const { config, checkpoint } = await openCheckpointDir(src);
  const tensors: Record<string, HostTensor> = {};
  for (const name of checkpoint.names()) tensors[name] = await checkpoint.read(name);
  await checkpoint.close();
  await writeCheckpointDir(dst, { config: config as Record<string, unknown>, tensors, maxShardBytes });
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'qformer_tokenizer'])
    if (existsSync(join(src, f))) cpSync(join(src, f), join(dst, f), { recursive: true });
  return dst;
}

/**
 * `got` (item indices, best first) must follow `scores` (Node's) from best down, except where Node's
 * scores tie within `tol`; distinct items, all of them when `all`.
 */
function expectRankedBy(
  got: readonly number[],
  scores: readonly number[],
  tol: number,
  what: string,
  all = true,
): void {
  expect(new Set(got).size, `${what}: distinct items`).toBe(got.length);
  for (const i of got) expect(i >= 0 && i < scores.length, `${what}: item ${i} exists`).toBe(true);
  if (all) expect(got.length, `${what}: every item ranked`).toBe(scores.length);
  for (let k = 0; k + 1 < got.length; k++) {
    const [a, b] = [scores[got[k]!]!, scores[got[k + 1]!]!];
    expect(
      a,
      `${what}: item ${got[k]} (Node ${a}) ranked above item ${got[k + 1]} (Node ${b})`,
    ).toBeGreaterThanOrEqual(b - tol);
  }
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe.skipIf(!available)('browser app in headless Chromium', () => {
  let browser: LaunchedChromium;
  let base = '';
  let ref: NodeReference;
  let server: { close(): void };
  let ckptDir = '';
  const tmp = mkdtempSync(join(tmpdir(), 'qf-browser-app-'));
  const pages = new Map<string, Page>();
  const results = new Map<string, PageResult>();
  const report: string[] = [];

  beforeAll(async () => {
    const dist = join(tmp, 'dist');
    await build({ root: exampleDir, logLevel: 'warn', build: { outDir: dist, emptyOutDir: true } });
    // The committed `qf demo` checkpoint when there is one, else a seeded untrained fixture.
    const ckpt = existsSync(join(committed, 'config.json'))
      ? committed
      : await writeFixtureCheckpoint(join(tmp, 'checkpoint'));
    ckptDir = ckpt;
    report.push(`checkpoint: ${ckpt === committed ? 'public/checkpoint (qf demo)' : 'untrained fixture'}`);
    const sharded = await reshard(ckpt, join(tmp, 'sharded'), 256 * 1024);
    ({ server, url: base } = await serve({
      root: dist,
      routes: { '/checkpoint/': ckpt, '/sharded/': sharded },
      isolate: true,
    }));
    browser = await launchChromium();
    const gallery = (await import('@qf/shapes')).generateShapes({
      seed: INPUTS.seed,
      counts: { train: 0, validation: 0, test: INPUTS.gallerySize },
    }).test;
    ref = await nodeReference(ckpt, {
      ...INPUTS,
      text: gallery[1]!.caption,
      candidates: gallery.map((g) => g.caption),
    });
    mkdirSync(outputDir, { recursive: true });
  }, 180_000);

  afterAll(async () => {
    for (const p of pages.values()) await p.close();
    await browser?.close();
    server?.close();
    rmSync(tmp, { recursive: true, force: true });
    console.log(`browser app:\n  ${report.join('\n  ')}`);
  });

  for (const backend of BACKENDS) {
    it(`${backend}: retrieval, caption and attention maps agree with Node`, async (ctx) => {
      const page = await browser.context.newPage();
      pages.set(backend, page);
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      page.on('console', (m) => {
        if (m.type() === 'error' && !/status of 404/.test(m.text())) errors.push(`console: ${m.text()}`);
      });
      await page.goto(`${base}/?backend=${backend}&seed=${INPUTS.seed}&query=${INPUTS.query}`);
      await page.waitForFunction(() => window.qfResult !== undefined, undefined, { timeout: 100_000 });
      const r = (await page.evaluate(() => window.qfResult)) as PageResult;
      expect(browser.blocked, 'requests beyond localhost').toEqual([]);
      if (r.error && /WebGPU/.test(r.error) && /no adapter|not available/.test(r.error)) {
        report.push(`${backend}: SKIPPED (${r.error})`);
        ctx.skip(r.error);
      }
      expect(r.error, r.error).toBeUndefined();
      expect(errors).toEqual([]);
      expect(r.backend).toBe(backend);
      results.set(backend, r);
      expect(r.progress.loaded).toBe(r.progress.total);
      expect(r.inputs.gallery).toEqual(ref.gallery);
      expect(r.inputs.candidates).toEqual(ref.gallery);
      expect(r.inputs.text).toBe(ref.gallery[1]);
      const d = {
        i2tItc: maxDiff(r.i2t!.itc, ref.i2t.itc),
        t2iItc: maxDiff(r.t2i!.itc, ref.t2i.itc),
        i2tItm: Math.max(...r.i2t!.itm.map(({ index, p }) => Math.abs(p - ref.i2t.itm[index]!))),
        t2iItm: Math.max(...r.t2i!.itm.map(({ index, p }) => Math.abs(p - ref.t2i.itm[index]!))),
        attention: Math.max(
          ...r.attention.map((a) => maxDiff(a.data, ref.attention.get(a.layer) ?? new Float32Array())),
        ),
      };
      expect(r.attention.map((a) => a.layer)).toEqual([...ref.attention.keys()]);
      expect(d.i2tItc).toBeLessThanOrEqual(TOL.itc);
      expect(d.t2iItc).toBeLessThanOrEqual(TOL.itc);
      expect(d.i2tItm).toBeLessThanOrEqual(TOL.itm);
      expect(d.t2iItm).toBeLessThanOrEqual(TOL.itm);
      expect(d.attention).toBeLessThanOrEqual(TOL.attention);
      expectRankedBy(r.i2t!.itcOrder, ref.i2t.itc, TOL.itc, 'image-to-text ITC');
      expectRankedBy(r.t2i!.itcOrder, ref.t2i.itc, TOL.itc, 'text-to-image ITC');
      const topI2t = r.i2t!.itm.map((x) => x.index);
      const topT2i = r.t2i!.itm.map((x) => x.index);
      expectRankedBy(topI2t, ref.i2t.itm, TOL.itm, 'image-to-text ITM re-rank', false);
      expectRankedBy(topT2i, ref.t2i.itm, TOL.itm, 'text-to-image ITM re-rank', false);
      expect(r.caption?.ids).toEqual(ref.caption.ids);
      expect(r.caption?.text).toBe(ref.caption.text);
      const fmt = (x: number) => x.toExponential(1);
      report.push(
        `${backend}: ${r.detail}; max |diff| ITC ${fmt(Math.max(d.i2tItc, d.t2iItc))}, ITM ${fmt(Math.max(d.i2tItm, d.t2iItm))}, attention ${fmt(d.attention)}; run ${r.timings['total']!.toFixed(0)} ms (first ${r.firstMs.toFixed(0)} ms)`,
      );
    });
  }

  it('a checkpoint directory picked with <input webkitdirectory> gives the same results', async () => {
    const before = results.get('tfjs-cpu');
    expect(before, 'the tfjs-cpu page ran').toBeDefined();
    const page = await browser.context.newPage();
    await page.goto(`${base}/?backend=tfjs-cpu&seed=${INPUTS.seed}&query=${INPUTS.query}&autorun=0`);
    await page.locator('#ckpt-dir').setInputFiles(ckptDir);
    await page.waitForFunction(() => window.qfResult !== undefined, undefined, { timeout: 60_000 });
    const r = (await page.evaluate(() => window.qfResult)) as PageResult;
    await page.close();
    expect(r.error, r.error).toBeUndefined();
    expect(r.checkpoint).toMatch(/^picked: /);
    expect(r.progress.loaded).toBe(r.progress.total);
    expect(browser.blocked, 'requests beyond localhost').toEqual([]);
    // same backend, same weights, same inputs: the same numbers
    expect(r.i2t).toEqual(before!.i2t);
    expect(r.t2i).toEqual(before!.t2i);
    expect(r.caption).toEqual(before!.caption);
    expect(r.attention).toEqual(before!.attention);
  });

  it('a sharded checkpoint over HTTP (index + shards, range reads) gives the same results', async () => {
    const before = results.get('tfjs-cpu');
    expect(before, 'the tfjs-cpu page ran').toBeDefined();
    const page = await browser.context.newPage();
    const requests: string[] = [];
    page.on('request', (req) =>
      requests.push(`${req.method()} ${new URL(req.url()).pathname} ${req.headers()['range'] ?? ''}`),
    );
    await page.goto(
      `${base}/?backend=tfjs-cpu&seed=${INPUTS.seed}&query=${INPUTS.query}&checkpoint=./sharded/`,
    );
    await page.waitForFunction(() => window.qfResult !== undefined, undefined, { timeout: 60_000 });
    const r = (await page.evaluate(() => window.qfResult)) as PageResult;
    await page.close();
    expect(r.error, r.error).toBeUndefined();
    expect(r.progress.loaded).toBe(r.progress.total);
    const shardReads = requests.filter((q) => /\/sharded\/model-\d+-of-\d+\.safetensors bytes=/.test(q));
    expect(shardReads.length, requests.join('\n')).toBeGreaterThan(2);
    expect(r.i2t).toEqual(before!.i2t);
    expect(r.t2i).toEqual(before!.t2i);
    expect(r.caption).toEqual(before!.caption);
  });

  it('a missing checkpoint is reported with the command that builds the default one', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${base}/?backend=tfjs-cpu&checkpoint=./nowhere/`);
    await page.waitForFunction(() => window.qfResult !== undefined, undefined, { timeout: 30_000 });
    const r = (await page.evaluate(() => window.qfResult)) as PageResult;
    expect(r.error).toMatch(/no checkpoint at \.\/nowhere\/.*pnpm --filter @qf\/example-browser checkpoint/);
    expect(await page.textContent('#status')).toMatch(/^error: /);
    await page.close();
  });

  it('screenshots of the retrieval, caption, attention-map and latency views', async () => {
    const page = pages.get('tfjs-wasm');
    expect(page, 'the tfjs-wasm page ran').toBeDefined();
    // run again so the latency table lists every backend measured in this browser profile
    await page!.evaluate(() => {
      window.qfResult = undefined;
      (document.getElementById('run') as HTMLButtonElement).click();
    });
    await page!.waitForFunction(() => window.qfResult !== undefined, undefined, { timeout: 60_000 });
    await page!.selectOption('#head', '0');
    for (const view of ['retrieval', 'caption', 'attention', 'latency'])
      await page!.locator(`#${view}`).screenshot({ path: join(outputDir, `${view}.png`) });
    await page!.screenshot({ path: join(outputDir, 'app.png'), fullPage: true });
    for (const f of ['retrieval', 'caption', 'attention', 'latency', 'app'])
      expect(existsSync(join(outputDir, `${f}.png`))).toBe(true);
    expect(await page!.locator('#latency-out tr').count()).toBeGreaterThan(2);
  });
});
