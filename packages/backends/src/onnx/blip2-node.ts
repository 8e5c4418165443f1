import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { type Blip2Model, loadBlip2FromDir } from '@qf/bridge/node';
import { type OnnxBackend, createOnnxBackend } from './backend.js';
import { Blip2OnnxRunner, type OnnxFileBackendOptions } from './blip2-runner.js';
import { OnnxBackendError } from './errors.js';
import {
  type Blip2ExportOptions,
  type Blip2OnnxManifest,
  type Blip2OnnxSource,
  blip2Manifest,
  exportBlip2Graphs,
} from './export-blip2.js';
import { writeOnnxGraph } from './node.js';
import type { Sym } from './trace.js';

/** The manifest's file name. */
export const BLIP2_MANIFEST = 'manifest.json';

/** Options of {@link writeBlip2Onnx}. */
export interface Blip2WriteOptions extends Blip2ExportOptions {
  /** `<file>.data` external weights: `auto` (default: only past 2 GB), `always`, `never`. */
  readonly externalData?: 'auto' | 'always' | 'never';
}

/**
 * Reads a whole HF `Blip2ForConditionalGeneration` / `InstructBlipForConditionalGeneration` directory
 * (vision tower, Q-Former + projector, OPT or T5 LM) onto `backend`: `loadBlip2FromDir` of
 * `@qf/bridge/node`, i.e. the `Blip2Model` the TS runtime runs; export it with {@link writeBlip2Onnx}.
 * @throws Blip2Error `BLIP2_NOT_A_FULL_MODEL` for a Q-Former-only or retrieval checkpoint; ConfigError
 *   for a config that is not a whole model; TensorError naming a missing or mis-shaped tensor.
 */
export async function loadBlip2ForOnnx(
  backend: OnnxBackend,
  dir: string,
  options: { strict?: boolean } = {},
): Promise<Blip2Model<Sym>> {
  const { model } = await loadBlip2FromDir(backend, dir, { strict: options.strict ?? false });
  return model;
}

/**
 * Moves a staged directory into `outDir`: one rename when `outDir` does not exist, else one rename
 * per file (each atomic), `last` (the manifest) at the end.
 */
async function publish(staging: string, outDir: string, last: string): Promise<void> {
  let exists = true;
  await stat(outDir).catch(() => {
    exists = false;
  });
  if (!exists) {
    await rename(staging, outDir);
    return;
  }
  const names = (await readdir(staging)).sort((a, b) => Number(a === last) - Number(b === last));
  for (const name of names) await rename(join(staging, name), join(outDir, name));
  await rm(staging, { recursive: true, force: true });
}

/**
 * Writes the parts of a whole BLIP-2 / InstructBLIP model to `dir`: `blip2_<part>.onnx` (+ `.data`
 * with external data) and `manifest.json` (parts, inputs/outputs with dtypes, dims and docs, config
 * summary, preprocessing, special tokens, text_config). The files are staged next to `dir` and renamed
 * into place, so a failed export leaves nothing behind. Deterministic: the same model and options give
 * byte-identical files.
 */
export async function writeBlip2Onnx(
  src: Blip2OnnxSource,
  dir: string,
  options: Blip2WriteOptions = {},
): Promise<Blip2OnnxManifest> {
  const outDir = resolve(dir);
  const parts = await exportBlip2Graphs(src, options);
  await mkdir(dirname(outDir), { recursive: true });
  const staging = join(
    dirname(outDir),
    `.${basename(outDir)}.qf-blip2-${process.pid}-${randomBytes(4).toString('hex')}`,
  );
  await mkdir(staging);
  try {
    const data: Record<string, string | undefined> = {};
    for (const p of parts)
      data[p.part] = await writeOnnxGraph(p.graph, staging, p.fileName, options.externalData ?? 'auto');
    const manifest = blip2Manifest(src, parts, options.weights ?? 'float32', data);
    await writeFile(join(staging, BLIP2_MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
    await publish(staging, outDir, BLIP2_MANIFEST);
    return manifest;
  } catch (e) {
    await rm(staging, { recursive: true, force: true });
    throw e;
  }
}

/**
 * `loadBlip2ForOnnx` + `writeBlip2Onnx` in one call, on a record-only backend (no onnxruntime needed).
 * @example
 * ```ts
 * import { exportBlip2OnnxFromDir } from '@qf/backends/onnx/node';
 * await exportBlip2OnnxFromDir('./blip2-opt', './blip2-onnx', { parts: ['all'], weights: 'float16' });
 * ```
 */
export async function exportBlip2OnnxFromDir(
  modelDir: string,
  outDir: string,
  options: Blip2WriteOptions & { strict?: boolean } = {},
): Promise<Blip2OnnxManifest & { readonly ignored: readonly string[] }> {
  const backend = createOnnxBackend({ name: 'onnx-export' });
  try {
    const model = await loadBlip2ForOnnx(backend, modelDir, { strict: options.strict ?? false });
    try {
      const manifest = await writeBlip2Onnx(model, outDir, options);
      return { ...manifest, ignored: model.ignored };
    } finally {
      model.dispose();
    }
  } finally {
    await backend.dispose();
  }
}

/** Reads `dir/manifest.json`. */
export async function readBlip2Manifest(dir: string): Promise<Blip2OnnxManifest> {
  const manifest = JSON.parse(await readFile(join(dir, BLIP2_MANIFEST), 'utf8')) as Blip2OnnxManifest;
  if (manifest.format !== 'qformer-ts-blip2-onnx/1')
    throw new OnnxBackendError('ONNX_RUNTIME', `${dir}: ${BLIP2_MANIFEST} is not a BLIP-2 ONNX manifest`);
  return manifest;
}

/**
 * Opens an export of `writeBlip2Onnx` for captioning with onnxruntime-node (sessions open on first use).
 * @example
 * ```ts
 * const runner = await openBlip2Onnx('./blip2-onnx', { ort: await import('onnxruntime-node') });
 * const { fullSequences } = await runner.generate({ pixelValues }, { maxNewTokens: 20 });
 * await runner.dispose();
 * ```
 */
export async function openBlip2Onnx(
  dir: string,
  options: Omit<OnnxFileBackendOptions, 'graphs'>,
): Promise<Blip2OnnxRunner> {
  const manifest = await readBlip2Manifest(dir);
  return Blip2OnnxRunner.create(manifest, { ...options, locate: (f) => join(resolve(dir), f) });
}
