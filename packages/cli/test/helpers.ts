import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HostTensor } from '@qf/io';
import { writeSafetensorsFile } from '@qf/io/node';
import { afterAll } from 'vitest';
import { goldenDir, readAll } from '../../../test-utils/parity.js';
import { main } from '../src/program.js';
import { memoryStreams } from '../src/streams.js';

/** The Q-Former-only golden case. */
export const publicSmall = join(goldenDir, 'public_small');

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

export {
  expectClose,
  goldenDir,
  hfRandomDir,
  maxAbsDiff,
  readAll,
  repoRoot,
  requireDir,
} from '../../../test-utils/parity.js';

/** The golden public_small case as `qf run` tests use it. */
export interface GoldenRunFixture {
  readonly inputs: Record<string, HostTensor>;
  readonly expected: Record<string, HostTensor>;
  /** A temp dir for outputs. */
  readonly dir: string;
  /** The golden inputs without `image_attention_mask`, written to a file in `dir`. */
  readonly unmaskedInputs: string;
}

/** Reads the golden inputs/outputs and writes the unmasked inputs file (call from `beforeAll`). */
export async function goldenRunFixture(): Promise<GoldenRunFixture> {
  const inputs = await readAll(join(publicSmall, 'inputs.safetensors'));
  const expected = await readAll(join(publicSmall, 'outputs.safetensors'));
  const dir = await tempDir();
  // The golden image mask applies only to `query_only_masked_image`; the other outputs were computed without one.
  const unmaskedInputs = await writeInputs(dir, 'unmasked.safetensors', unmasked(inputs));
  return { inputs, expected, dir, unmaskedInputs };
}
