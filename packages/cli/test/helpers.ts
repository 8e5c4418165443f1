import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HostTensor } from '@qf/io';
import { toFloat32 } from '@qf/io';
import { openSafetensors, writeSafetensorsFile } from '@qf/io/node';
import { afterAll, expect } from 'vitest';
import { main } from '../src/program.js';
import { memoryStreams } from '../src/streams.js';

const here = dirname(fileURLToPath(import.meta.url));
/** Repository root. */
export const repoRoot = resolve(here, '../../..');
/** `../shared/golden` next to the repository. */
export const goldenDir = resolve(repoRoot, '../shared/golden');
/** The Q-Former-only golden case. */
export const publicSmall = join(goldenDir, 'public_small');
/** HF-generated random cases shipped in the repo. */
export const hfRandomDir = join(repoRoot, 'fixtures/hf-random');

/**
 * `qf run` output name -> name in a golden `outputs.safetensors` (the runs without an image mask;
 * `query_only_masked_image.last_hidden_state` is the masked query pass).
 */
export const GOLDEN_NAMES: Readonly<Record<string, string>> = {
  query_output: 'query_only.last_hidden_state',
  text_output: 'text_only.last_hidden_state',
  multimodal_output: 'multimodal.last_hidden_state',
  itm_logits: 'itm.logits_per_image',
  itc_logits: 'itc.logits_per_image',
  image_feats: 'itc.image_embeds',
  text_feat: 'itc.text_embeds',
  language_projection: 'language_projection.output',
};

/** The inputs of a golden case without `image_attention_mask` (the mask applies to one golden pass only). */
export function unmasked(inputs: Record<string, HostTensor>): Record<string, HostTensor | undefined> {
  return {
    image_embeds: inputs['image_embeds'],
    input_ids: inputs['input_ids'],
    attention_mask: inputs['attention_mask'],
  };
}

export function requireDir(dir: string): string {
  if (!existsSync(dir)) throw new Error(`test data not found: ${dir}`);
  return dir;
}

/** Result of running `qf` in-process. */
export interface QfResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `qf <args>` in-process and collects its output. */
export async function qf(...args: string[]): Promise<QfResult> {
  const streams = memoryStreams();
  const code = await main(args, streams);
  return { code, stdout: streams.stdout, stderr: streams.stderr };
}

/** A fresh temp directory, removed after the test file. */
const made: string[] = [];
afterAll(async () => {
  await Promise.all(made.map((d) => rm(d, { recursive: true, force: true })));
});
export async function tempDir(prefix = 'qf-cli-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/** Reads every tensor of a safetensors file. */
export async function readAll(path: string): Promise<Record<string, HostTensor>> {
  const file = await openSafetensors(path);
  try {
    return await file.readAll();
  } finally {
    await file.close();
  }
}

/** Writes `tensors` (only the named ones, when `names` is given) to a temp safetensors file. */
export async function writeInputs(
  dir: string,
  file: string,
  tensors: Record<string, HostTensor | undefined>,
): Promise<string> {
  const path = join(dir, file);
  const present = Object.fromEntries(Object.entries(tensors).filter(([, t]) => t !== undefined)) as Record<
    string,
    HostTensor
  >;
  await writeSafetensorsFile(path, present);
  return path;
}

/** Largest absolute difference between two tensors of the same size. */
export function maxAbsDiff(a: HostTensor, b: HostTensor): number {
  const x = toFloat32(a);
  const y = toFloat32(b);
  let m = 0;
  for (let i = 0; i < x.length; i++) {
    const d = Math.abs((x[i] as number) - (y[i] as number));
    if (!(d <= m)) m = d; // NaN propagates
  }
  return m;
}

/** Asserts same shape and max |a - b| <= atol, naming the tensor. */
export function expectClose(
  name: string,
  actual: HostTensor | undefined,
  expected: HostTensor | undefined,
  atol = 1e-4,
): void {
  expect(actual, `${name}: missing actual`).toBeDefined();
  expect(expected, `${name}: missing expected`).toBeDefined();
  if (!actual || !expected) return;
  expect([...actual.shape], `${name}: shape`).toEqual([...expected.shape]);
  const d = maxAbsDiff(actual, expected);
  expect(d, `${name}: max abs diff ${d}`).toBeLessThanOrEqual(atol);
}
