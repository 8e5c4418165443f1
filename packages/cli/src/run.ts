import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Backend } from '@qf/core';
import { loadQFormerFromDir } from '@qf/core/node';
import type { HostTensor } from '@qf/io';
import { writeSafetensorsFile } from '@qf/io/node';
import {
  type CliBackendName,
  DEFAULT_ONNX_THREADS,
  checkThreads,
  closeBackend,
  openBackend,
} from './backend.js';
import { fmtMs, fmtShape, table } from './format.js';
import { requireDirectory, requireFile } from './paths.js';
import type { CliStreams } from './streams.js';
import { CliError } from './errors.js';
import { asWritten, runBlip2 } from './run-blip2.js';
import { asF32, readSafetensorsFile } from './tensors.js';
import { VERSION } from './version.js';

/** Options of `qf run`. */
export interface RunCommandOptions {
  /** Safetensors file with the named inputs. */
  readonly inputs: string;
  /** Safetensors file to write every output to (F32). */
  readonly out: string;
  readonly backend?: CliBackendName;
  /** `onnx` only: ONNX Runtime threads per operator (default 2). */
  readonly threads?: number | undefined;
  /** Fail when the checkpoint holds tensors the Q-Former does not use. */
  readonly strict?: boolean;
  /** Also write every layer's hidden states. */
  readonly hiddenStates?: boolean;
  /**
   * Whole BLIP-2 / InstructBLIP models (inputs with `pixel_values`): also generate this many new
   * tokens and write `generated_ids`.
   */
  readonly generate?: number | undefined;
}

/** What `qf run` did. */
export interface RunResult {
  readonly outPath: string;
  /** Every output: F32, except token ids and masks of a whole model (I64). */
  readonly outputs: Record<string, HostTensor<'F32' | 'I64'>>;
  /** What ran: the Q-Former (`image_embeds` / `input_ids` inputs) or a whole model (`pixel_values`). */
  readonly model: 'qformer' | 'blip2';
  /** Checkpoint tensors the model did not load. */
  readonly ignored: readonly string[];
  readonly loadMs: number;
  readonly runMs: number;
}

async function loadAndRun<T>(
  backend: Backend<T>,
  dir: string,
  inputs: Record<string, HostTensor>,
  options: RunCommandOptions,
) {
  const t0 = performance.now();
  const model = await loadQFormerFromDir(backend, dir, { strict: options.strict ?? false });
  const t1 = performance.now();
  try {
    const raw = await model.run(inputs, { hiddenStates: options.hiddenStates ?? false });
    return { raw, ignored: model.ignored, loadMs: t1 - t0, runMs: performance.now() - t1 };
  } finally {
    model.dispose();
  }
}

/**
 * `qf run`: loads the Q-Former of an HF model directory, runs it on the named inputs of a safetensors
 * file and writes every output (F32) to `out` atomically. Inputs with `pixel_values` run the whole
 * BLIP-2 / InstructBLIP model instead (see `runBlip2`). Nothing is written when anything fails.
 */
export async function runModel(modelDir: string, options: RunCommandOptions): Promise<RunResult> {
  const dir = await requireDirectory(modelDir, 'model directory');
  const inputsPath = await requireFile(options.inputs, 'inputs file');
  const outPath = resolve(options.out);
  const backendName = options.backend ?? 'tfjs-cpu';
  checkThreads(backendName, options.threads);
  const { tensors: inputs } = await readSafetensorsFile(inputsPath);
  // Whole-model runs read pixel_values; anything with image_embeds stays the Q-Former run it was.
  const whole = 'pixel_values' in inputs && !('image_embeds' in inputs);
  if (!whole && options.generate !== undefined)
    throw new CliError(
      'CLI_BAD_OPTION',
      '--generate needs a whole BLIP-2 / InstructBLIP model run: give pixel_values in --inputs',
    );
  const backend = await openBackend(backendName, { threads: options.threads });
  let ran: Awaited<ReturnType<typeof loadAndRun>>;
  try {
    ran = whole
      ? await runBlip2<unknown>(backend, dir, inputs, options)
      : await loadAndRun<unknown>(backend, dir, inputs, options);
  } finally {
    await closeBackend(backend);
  }
  const { raw, ignored, loadMs, runMs } = ran;
  const outputs = Object.fromEntries(
    Object.entries(raw).map(([k, v]) => [k, whole ? asWritten(v) : asF32(v)]),
  );
  await mkdir(dirname(outPath), { recursive: true });
  await writeSafetensorsFile(outPath, outputs, {
    format: 'pt',
    producer: `@qf/cli ${VERSION} qf run`,
    backend: backendName,
  });
  return { outPath, outputs, model: whole ? 'blip2' : 'qformer', ignored, loadMs, runMs };
}

function backendLabel(options: RunCommandOptions): string {
  const name = options.backend ?? 'tfjs-cpu';
  if (name !== 'onnx') return name;
  const threads = options.threads ?? DEFAULT_ONNX_THREADS;
  return `onnx, ${threads} thread${threads === 1 ? '' : 's'}`;
}

/** The `qf run` command: {@link runModel} plus a short report. */
export async function runCommand(
  modelDir: string,
  options: RunCommandOptions,
  streams: CliStreams,
): Promise<void> {
  const result = await runModel(modelDir, options);
  if (result.ignored.length > 0) {
    streams.err(
      `note: ${result.ignored.length} checkpoint tensor(s) not used by the ${result.model === 'blip2' ? 'model' : 'Q-Former'} (e.g. ${result.ignored[0]}); --strict makes this an error\n`,
    );
  }
  const rows = Object.entries(result.outputs).map(([name, t]) => [name, t.dtype, fmtShape(t.shape)]);
  streams.out(table(['output', 'dtype', 'shape'], rows));
  streams.out(
    `wrote ${rows.length} outputs to ${result.outPath} (${backendLabel(options)}: load ${fmtMs(result.loadMs)}, run ${fmtMs(result.runMs)})\n`,
  );
}
