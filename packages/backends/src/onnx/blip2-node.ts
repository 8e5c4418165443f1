import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { OptLanguageModel, T5LanguageModel } from '@qf/bridge';
import { loadQFormerTensors, loadVisionTensors, qformerModelConfigFromJson } from '@qf/core';
import {
  type HostTensor,
  detectCheckpointLayout,
  isBlip2Config,
  parseModelConfig,
  toCanonicalName,
} from '@qf/io';
import { openCheckpointDir } from '@qf/io/node';
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

/** The manifest's file name. */
export const BLIP2_MANIFEST = 'manifest.json';

/** Options of {@link writeBlip2Onnx}. */
export interface Blip2WriteOptions extends Blip2ExportOptions {
  /** `<file>.data` external weights: `auto` (default: only past 2 GB), `always`, `never`. */
  readonly externalData?: 'auto' | 'always' | 'never';
}

/** A whole model read from an HF directory onto an OnnxBackend, plus what it did not read. */
export interface LoadedBlip2Source extends Blip2OnnxSource {
  /** Checkpoint tensors no part uses. */
  readonly ignored: readonly string[];
}

/**
 * Reads a whole HF `Blip2ForConditionalGeneration` / `InstructBlipForConditionalGeneration` directory
 * (vision tower, Q-Former + projector, OPT or T5 LM) into one parameter store of `backend`.
 * @throws OnnxBackendError `ONNX_EXPORT` when the directory is not a BLIP-2 / InstructBLIP model with a
 *   `text_config` (e.g. a bare Q-Former checkpoint); TensorError naming a missing or mis-shaped tensor.
 */
export async function loadBlip2ForOnnx(
  backend: OnnxBackend,
  dir: string,
  options: { strict?: boolean } = {},
): Promise<LoadedBlip2Source> {
  const { config, checkpoint } = await openCheckpointDir(dir);
  try {
    const cfg = parseModelConfig(config);
    if (!isBlip2Config(cfg) || !cfg.text)
      throw new OnnxBackendError(
        'ONNX_EXPORT',
        `${dir}: not a whole BLIP-2 / InstructBLIP model (model_type ${cfg.modelType}${isBlip2Config(cfg) ? ', no text_config' : ''})`,
      );
    const lm = cfg.useDecoderOnlyLanguageModel
      ? OptLanguageModel.fromTextConfig(cfg.text.raw)
      : T5LanguageModel.fromTextConfig(cfg.text.raw);
    const layout = detectCheckpointLayout(checkpoint.names());
    const strict = options.strict ?? false;
    const vision = await loadVisionTensors(checkpoint, cfg.vision, { strict });
    const qformer = await loadQFormerTensors(checkpoint, qformerModelConfigFromJson(config), {
      strict: false,
      canonicalName: (n) => toCanonicalName(layout, n),
    });
    const lmTensors = await lm.loadTensors(checkpoint);
    const all = new Map<string, HostTensor>([...vision.tensors, ...qformer.tensors, ...lmTensors.tensors]);
    // Read by no part: ignored by the vision tower and the Q-Former, outside the LM (whose own
    // unread names, e.g. a tied lm_head, are in lmTensors.ignored).
    const byQFormer = new Set(qformer.ignored);
    const ignored = vision.ignored.filter((n) => byQFormer.has(n) && !n.startsWith(lm.prefix));
    const extra = [...ignored, ...lmTensors.ignored];
    if (strict && extra.length > 0)
      throw new OnnxBackendError('ONNX_EXPORT', `checkpoint tensor(s) no part uses: ${extra.slice(0, 5).join(', ')}`);
    const params = backend.createParams(all);
    all.clear();
    return {
      backend,
      modelType: cfg.modelType,
      vision: cfg.vision,
      qformer: qformer.spec,
      lm,
      params,
      textConfig: cfg.text.raw,
      ignored: extra,
    };
  } finally {
    await checkpoint.close();
  }
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
  const staging = join(dirname(outDir), `.${basename(outDir)}.qf-blip2-${process.pid}-${randomBytes(4).toString('hex')}`);
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
    const src = await loadBlip2ForOnnx(backend, modelDir, { strict: options.strict ?? false });
    const manifest = await writeBlip2Onnx(src, outDir, options);
    return { ...manifest, ignored: src.ignored };
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
