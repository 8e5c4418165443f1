/**
 * @qf/backends/onnx/node — write exported Q-Former graphs to disk (Node only).
 * @packageDocumentation
 */
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { mkdir, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { QFormerModel } from '@qf/core';
import { loadQFormerFromDir } from '@qf/core/node';
import { createOnnxBackend } from './backend.js';
import { type BuiltGraph, PROTOBUF_LIMIT, encodeExternal, encodeModelPartsInline } from './build.js';
import { type ExportOptions, type ExportedPart, type QFormerPart, exportQFormerGraphs } from './export.js';
import type { Part } from './proto.js';
import type { OnnxStorage } from './storage.js';
import type { Sym } from './trace.js';

export * from './index.js';
export {
  type Blip2WriteOptions,
  BLIP2_MANIFEST,
  exportBlip2OnnxFromDir,
  loadBlip2ForOnnx,
  openBlip2Onnx,
  readBlip2Manifest,
  writeBlip2Onnx,
} from './blip2-node.js';

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

/** Options of {@link tempFileStorage}. */
export interface TempFileStorageOptions {
  /** Parent directory of the storage's own temporary directory (default: `os.tmpdir()`). */
  readonly dir?: string;
}

/**
 * An {@link OnnxStorage} in a fresh temporary directory: parameters go to one append-only file
 * (read back one tensor at a time while a graph is encoded) and each graph is written as a `.onnx`
 * file with 64 KiB-aligned external data, opened by path and deleted once its session exists. The
 * directory is removed by `backend.dispose()` (or at process exit). Disk use: the weights once, plus
 * one graph's weights while its session is created.
 * @example
 * ```ts
 * import { createOnnxBackend, tempFileStorage } from '@qf/backends/onnx/node';
 * const backend = createOnnxBackend({ ort, storage: tempFileStorage() });
 * ```
 */
export function tempFileStorage(options: TempFileStorageOptions = {}): OnnxStorage {
  const root = mkdtempSync(join(options.dir ?? tmpdir(), 'qf-onnx-'));
  const cleanup = () => rmSync(root, { recursive: true, force: true });
  process.once('exit', cleanup);
  let fd: number | undefined;
  let size = 0;
  let graphs = 0;
  const params = (): number => {
    fd ??= openSync(join(root, 'params.f32'), 'w+');
    return fd;
  };
  return {
    putParam(data) {
      const f = params();
      const offset = size;
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      for (let done = 0; done < bytes.length; )
        done += writeSync(f, bytes, done, bytes.length - done, offset + done);
      size += bytes.length;
      const count = data.length;
      return () => {
        if (fd === undefined) throw new Error('the onnx weight storage was disposed');
        const out = new Float32Array(count);
        const dst = new Uint8Array(out.buffer);
        for (let done = 0; done < dst.length; ) {
          const n = readSync(fd, dst, done, dst.length - done, offset + done);
          if (n === 0) throw new Error('onnx weight storage: file truncated');
          done += n;
        }
        return out;
      };
    },
    async writeModel(graph) {
      const name = `graph${graphs++}.onnx`;
      await writeOnnxGraph(graph, root, name, 'always');
      return join(root, name);
    },
    async removeModel(path) {
      // Best effort: where the platform cannot delete a mapped file, dispose() removes it later.
      await rm(path, { force: true }).catch(() => undefined);
      await rm(`${path}.data`, { force: true }).catch(() => undefined);
    },
    async dispose() {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
      process.removeListener('exit', cleanup);
      await rm(root, { recursive: true, force: true });
    },
  };
}
