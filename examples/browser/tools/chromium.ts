// Headless Chromium for the browser examples' tests (shared by examples/browser and
// examples/browser-retrieval): Debian's /usr/bin/chromium driven by playwright-core (which downloads
// no browser), a fresh profile per launch, and every request that is not to localhost aborted and
// recorded, so a test can fail when a page reaches for the network.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium } from 'playwright-core';

/** Debian's Chromium (.ci/run installs it); `CHROMIUM_PATH` overrides. */
export const CHROMIUM_PATH = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

/**
 * The flags every browser test launches with. `--enable-unsafe-webgpu --enable-unsafe-swiftshader`
 * give WebGPU a SwiftShader (CPU Vulkan) adapter in headless mode without a GPU; `--disable-gpu`
 * keeps WebGL on SwiftShader too. The rest keep Chromium from calling home.
 */
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--enable-unsafe-webgpu',
  '--enable-unsafe-swiftshader',
];

/** Whether the browser is installed; in CI its absence is an error, elsewhere tests skip. */
export function chromiumAvailable(): boolean {
  const ok = existsSync(CHROMIUM_PATH);
  if (!ok && process.env['CI'])
    throw new Error(`CI needs Chromium at ${CHROMIUM_PATH} (.ci/run installs it)`);
  return ok;
}

/** A launched browser with its own fresh profile. */
export interface LaunchedChromium {
  readonly context: BrowserContext;
  /** Requests that were aborted because they did not go to localhost (URLs). */
  readonly blocked: string[];
  close(): Promise<void>;
}

const LOCAL = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * Launches Chromium with {@link CHROMIUM_FLAGS} and a fresh `--user-data-dir` (a temporary directory,
 * removed on close). Requests to anything but localhost (and `data:`/`blob:` URLs) are aborted and
 * listed in `blocked`.
 */
export async function launchChromium(): Promise<LaunchedChromium> {
  const profile = mkdtempSync(join(tmpdir(), 'qf-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1280, height: 900 },
  });
  const blocked: string[] = [];
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.protocol === 'data:' || url.protocol === 'blob:' || LOCAL.has(url.hostname))
      return route.continue();
    blocked.push(url.href);
    return route.abort('blockedbyclient');
  });
  return {
    context,
    blocked,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
