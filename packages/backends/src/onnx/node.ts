/**
 * @qf/backends/onnx/node — write exported Q-Former graphs to disk (Node only).
 * @packageDocumentation
 */
import { mkdir, open, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { QFormerModel } from '@qf/core';
import { loadQFormerFromDir } from '@qf/core/node';
import { createOnnxBackend } from './backend.js';
import { type BuiltGraph, PROTOBUF_LIMIT, encodeExternal, encodeModelPartsInline } from './build.js';
import { type ExportOptions, type ExportedPart, type QFormerPart, exportQFormerGraphs } from './export.js';
import type { Part } from './proto.js';
import type { Sym } from './trace.js';

export * from './index.js';

/** Options of {@link writeQFormerOnnx}. */
export interface WriteOptions extends ExportOptions {
  /**
   * External data: `auto` (default) uses a `<file>.data` file only when a part's weights pass 2 GB,
   * `always` always does (ONNX Runtime then memory-maps the weights), `never` never does.
   */
  readonly externalData?: 'auto' | 'always' | 'never';
}

/** What {@link writeQFormerOnnx} wrote, also saved as `qformer_onnx.json` next to the files. */
export interface OnnxManifest {
  readonly format: 'qformer-onnx/1';
  readonly weights: string;
  readonly parts: readonly {
    readonly part: QFormerPart;
    readonly file: string;
    readonly externalData?: string | undefined;
    readonly inputs: ExportedPart['inputs'];
    readonly outputs: ExportedPart['outputs'];
  }[];
}

async function writeParts(path: string, parts: readonly Part[]): Promise<void> {
  const fh = await open(path, 'w');
  try {
    for (const p of parts) await fh.write(p instanceof Uint8Array ? p : p.bytes());
  } finally {
    await fh.close();
  }
}

/** Writes one graph as `dir/fileName` (+ `dir/fileName.data` with external data); returns the data file name. */
export async function writeOnnxGraph(
  graph: BuiltGraph,
  dir: string,
  fileName: string,
  externalData: 'auto' | 'always' | 'never' = 'auto',
): Promise<string | undefined> {
  const external =
    externalData === 'always' ||
    (externalData === 'auto' && graph.byteLength > PROTOBUF_LIMIT - 64 * 2 ** 20);
  const path = join(dir, fileName);
  if (!external) {
    await writeParts(path, encodeModelPartsInline(graph));
    return undefined;
  }
  const dataName = `${basename(fileName)}.data`;
  const layout = encodeExternal(graph, dataName);
  await writeParts(path, layout.modelParts);
  const fh = await open(join(dir, dataName), 'w');
  try {
    for (const c of layout.chunks) await fh.write(c.bytes(), 0, c.length, c.offset);
    await fh.truncate(layout.dataSize);
  } finally {
    await fh.close();
  }
  return dataName;
}

/**
 * Exports the Q-Former of `model` (loaded on an OnnxBackend) to `dir`: one `qformer_<part>.onnx`
 * per part and a `qformer_onnx.json` manifest with every input and output (name, dtype, dims).
 */
export async function writeQFormerOnnx(
  model: QFormerModel<Sym>,
  dir: string,
  options: WriteOptions = {},
): Promise<OnnxManifest> {
  await mkdir(dir, { recursive: true });
  const parts = await exportQFormerGraphs(model, options);
  const entries: OnnxManifest['parts'][number][] = [];
  for (const p of parts) {
    const data = await writeOnnxGraph(p.graph, dir, p.fileName, options.externalData ?? 'auto');
    entries.push({
      part: p.part,
      file: p.fileName,
      externalData: data,
      inputs: p.inputs,
      outputs: p.outputs,
    });
  }
  const manifest: OnnxManifest = {
    format: 'qformer-onnx/1',
    weights: options.weights ?? 'float32',
    parts: entries,
  };
  await writeFile(join(dir, 'qformer_onnx.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

/**
 * `qf export-onnx <model-dir> --out DIR [--part ...] [--fp16]` in one call: loads the Q-Former of an
 * HF model directory (HF BLIP-2, InstructBLIP or LAVIS names) and writes its parts to `outDir`.
 * Needs no onnxruntime.
 * @example
 * ```ts
 * import { exportQFormerOnnxFromDir } from '@qf/backends/onnx/node';
 * await exportQFormerOnnxFromDir('./blip2', './onnx', { parts: ['query'], weights: 'float16' });
 * ```
 */
export async function exportQFormerOnnxFromDir(
  modelDir: string,
  outDir: string,
  options: WriteOptions = {},
): Promise<OnnxManifest> {
  const backend = createOnnxBackend({});
  const model = await loadQFormerFromDir(backend, modelDir);
  try {
    return await writeQFormerOnnx(model, outDir, options);
  } finally {
    model.dispose();
    await backend.dispose();
  }
}
