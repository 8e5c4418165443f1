import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import {
  BLIP2_PART_GROUPS,
  type Blip2OnnxManifest,
  type Blip2OnnxPart,
  type Blip2PartGroup,
  OnnxBackendError,
  QFORMER_PARTS,
  type QFormerPart,
  type WeightFormat,
  createOnnxBackend,
  supportedParts,
} from '@qf/backends/onnx';
import {
  BLIP2_MANIFEST,
  type OnnxManifest,
  exportBlip2OnnxFromDir,
  writeQFormerOnnx,
} from '@qf/backends/onnx/node';
import { loadQFormerFromDir } from '@qf/core/node';
import { isBlip2Config, parseModelConfig } from '@qf/io';
import { openCheckpointDir } from '@qf/io/node';
import { CliError } from './errors.js';
import { fmtBytes, fmtMs, table } from './format.js';
import { pathKind, requireDirectory } from './paths.js';
import type { CliStreams } from './streams.js';

/** The manifest file every export writes next to the `.onnx` files. */
export const ONNX_MANIFEST = 'qformer_onnx.json';

/** Options of `qf export-onnx`. */
export interface ExportOnnxOptions {
  /** Directory to write the `.onnx` files and the manifest to (created if missing). */
  readonly out: string;
  /**
   * Parts to export: Q-Former parts (`query`, `text`, `multimodal`, `full`, `rerank`; default: every
   * part the checkpoint supports), or, for a whole BLIP-2 / InstructBLIP directory, `vision`,
   * `qformer_projector`, `lm`, `all` (or single LM parts such as `lm_step`); the two kinds do not mix.
   */
  readonly parts?: readonly string[] | undefined;
  /** Store weights as float16 (Cast to float32 at load; compute stays float32). */
  readonly fp16?: boolean | undefined;
  /** Quantize MatMul weights to int8 (`com.microsoft.DynamicQuantizeMatMul`; ONNX Runtime only). */
  readonly int8?: boolean | undefined;
  /** Always put the weights in a `<file>.data` file next to each `.onnx` (default: only past 2 GB). */
  readonly externalData?: boolean | undefined;
  /** Give the image-reading parts an `image_attention_mask` input (default: every image token is real). */
  readonly imageMask?: boolean | undefined;
  /** Fail when the checkpoint holds tensors the Q-Former does not use. */
  readonly strict?: boolean | undefined;
}

/** One file set written by `qf export-onnx`. */
export interface ExportedFile {
  readonly part: QFormerPart;
  /** Absolute path of the `.onnx` file. */
  readonly path: string;
  /** Absolute path of its external data file, when it has one. */
  readonly dataPath?: string | undefined;
  /** Bytes of the `.onnx` file plus its data file. */
  readonly bytes: number;
  readonly inputs: OnnxManifest['parts'][number]['inputs'];
  readonly outputs: OnnxManifest['parts'][number]['outputs'];
}

/** What `qf export-onnx` did. */
export interface ExportOnnxResult {
  readonly outDir: string;
  readonly manifestPath: string;
  readonly manifest: OnnxManifest;
  readonly weights: WeightFormat;
  readonly files: readonly ExportedFile[];
  /** Checkpoint tensors the Q-Former did not load (vision tower, LM, ...). */
  readonly ignored: readonly string[];
  readonly loadMs: number;
  readonly exportMs: number;
}

/** Every `--part` name of a whole-model export: the groups and the single parts. */
export const BLIP2_CLI_PARTS: readonly string[] = [
  ...BLIP2_PART_GROUPS,
  'lm_prefill',
  'lm_step',
  't5_encoder',
  't5_decoder_first',
  't5_decoder_step',
];

/** Checks part names and drops repeats, keeping the order given. */
export function parseParts(names: readonly string[] | undefined): QFormerPart[] | undefined {
  if (names === undefined || names.length === 0) return undefined;
  const out: QFormerPart[] = [];
  for (const raw of names) {
    const name = raw.trim();
    if (BLIP2_CLI_PARTS.includes(name))
      throw new CliError('CLI_BAD_OPTION', `--part: "${name}" is a whole-model part (see exportBlip2Onnx)`);
    if (!(QFORMER_PARTS as readonly string[]).includes(name)) {
      throw new CliError(
        'CLI_BAD_OPTION',
        `--part: unknown part "${name}" (expected one of ${QFORMER_PARTS.join(', ')}; ` +
          `for a whole BLIP-2 / InstructBLIP model directory: ${BLIP2_PART_GROUPS.join(', ')})`,
      );
    }
    if (!out.includes(name as QFormerPart)) out.push(name as QFormerPart);
  }
  return out;
}

function weightFormat(options: ExportOnnxOptions): WeightFormat {
  if (options.fp16 && options.int8) {
    throw new CliError('CLI_BAD_OPTION', '--fp16 and --int8 exclude each other (pick one weight format)');
  }
  return options.fp16 ? 'float16' : options.int8 ? 'int8' : 'float32';
}

/**
 * Moves the staged export into `outDir`: one rename of the whole directory when `outDir` does not
 * exist, else one rename per file (each atomic), the manifest last.
 */
async function publish(staging: string, outDir: string): Promise<void> {
  if ((await pathKind(outDir)) === 'missing') {
    await rename(staging, outDir);
    return;
  }
  const names = (await readdir(staging)).sort(
    (a, b) => Number(a === ONNX_MANIFEST) - Number(b === ONNX_MANIFEST),
  );
  for (const name of names) await rename(join(staging, name), join(outDir, name));
  await rm(staging, { recursive: true, force: true });
}

/**
 * `qf export-onnx`: loads the Q-Former of an HF model directory (HF BLIP-2, InstructBLIP or LAVIS
 * names) and writes the requested parts as ONNX files plus the `qformer_onnx.json` manifest, through
 * `@qf/backends/onnx/node`'s `writeQFormerOnnx`. Everything is checked before anything is written, and
 * the files are staged in a temporary directory next to `out` and renamed into place, so a failed
 * export leaves no partial files behind. Needs no ONNX Runtime.
 */
export async function exportOnnx(modelDir: string, options: ExportOnnxOptions): Promise<ExportOnnxResult> {
  const dir = await requireDirectory(modelDir, 'model directory');
  const parts = parseParts(options.parts);
  const weights = weightFormat(options);
  const outDir = resolve(options.out);
  const outKind = await pathKind(outDir);
  if (outKind !== 'missing' && outKind !== 'directory') {
    throw new CliError('CLI_NOT_A_DIRECTORY', `--out exists and is not a directory: ${outDir}`);
  }

  const backend = createOnnxBackend({ name: 'onnx-export' });
  try {
    const t0 = performance.now();
    const model = await loadQFormerFromDir(backend, dir, { strict: options.strict ?? false });
    const t1 = performance.now();
    try {
      const supported = supportedParts(model);
      const missing = (parts ?? []).filter((p) => !supported.includes(p));
      if (missing.length > 0) {
        // Without a text path every text-reading part is missing; with one, only rerank can be (no heads).
        const needs = model.spec.textPath
          ? 'the retrieval heads (itm_head, vision/text projections)'
          : 'the Q-Former text path (embeddings.word_embeddings, text-row feed-forward layers)';
        throw new OnnxBackendError(
          'ONNX_EXPORT',
          `part${missing.length > 1 ? 's' : ''} ${missing.map((p) => `"${p}"`).join(', ')} ` +
            `need${missing.length > 1 ? '' : 's'} ${needs}, which this checkpoint lacks; it can export: ${supported.join(', ')}`,
        );
      }
      await mkdir(dirname(outDir), { recursive: true });
      // Next to --out (same file system, so renames are atomic); mkdir, unlike mkdtemp, honours the umask.
      const staging = join(
        dirname(outDir),
        `.${basename(outDir)}.qf-export-${process.pid}-${randomBytes(4).toString('hex')}`,
      );
      await mkdir(staging);
      let manifest: OnnxManifest;
      try {
        manifest = await writeQFormerOnnx(model, staging, {
          ...(parts ? { parts } : {}),
          weights,
          imageMask: options.imageMask ?? false,
          externalData: options.externalData ? 'always' : 'auto',
        });
        await publish(staging, outDir);
      } catch (e) {
        await rm(staging, { recursive: true, force: true });
        throw e;
      }
      const t2 = performance.now();
      const files: ExportedFile[] = [];
      for (const p of manifest.parts) {
        const path = join(outDir, p.file);
        const dataPath = p.externalData ? join(outDir, p.externalData) : undefined;
        const bytes = (await stat(path)).size + (dataPath ? (await stat(dataPath)).size : 0);
        files.push({ part: p.part, path, dataPath, bytes, inputs: p.inputs, outputs: p.outputs });
      }
      return {
        outDir,
        manifestPath: join(outDir, ONNX_MANIFEST),
        manifest,
        weights,
        files,
        ignored: model.ignored,
        loadMs: t1 - t0,
        exportMs: t2 - t1,
      };
    } finally {
      model.dispose();
    }
  } finally {
    await backend.dispose();
  }
}

type Io = OnnxManifest['parts'][number]['inputs'][number];

/** `image_embeds float32 [batch, num_image_tokens, 48]`. */
export function fmtIo(io: Io): string {
  return `${io.name} ${io.dtype} [${io.dims.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;
}

/** The table `qf export-onnx` prints: one block of lines per part, inputs and outputs side by side. */
export function formatExport(result: {
  readonly files: readonly (Omit<ExportedFile, 'part'> & { readonly part: string })[];
}): string {
  const rows: string[][] = [];
  for (const f of result.files) {
    const lines = Math.max(f.inputs.length, f.outputs.length, f.dataPath ? 2 : 1);
    for (let i = 0; i < lines; i++) {
      const first = i === 0;
      const fileCell = first ? basename(f.path) : i === 1 && f.dataPath ? `+ ${basename(f.dataPath)}` : '';
      const input = f.inputs[i];
      const output = f.outputs[i];
      rows.push([
        first ? f.part : '',
        fileCell,
        input ? fmtIo(input) : '',
        output ? fmtIo(output) : '',
        first ? fmtBytes(f.bytes) : '',
      ]);
    }
  }
  return table(['part', 'file', 'inputs', 'outputs', 'size'], rows, [4]);
}

/** One file of a whole-model export. */
export interface ExportedBlip2File extends Omit<ExportedFile, 'part'> {
  readonly part: Blip2OnnxPart;
}

/** What `qf export-onnx --part vision|qformer_projector|lm|all` did. */
export interface ExportBlip2OnnxResult {
  readonly outDir: string;
  readonly manifestPath: string;
  readonly manifest: Blip2OnnxManifest;
  readonly weights: WeightFormat;
  readonly files: readonly ExportedBlip2File[];
  /** Checkpoint tensors no part uses. */
  readonly ignored: readonly string[];
  readonly exportMs: number;
}

/** Whether `dir` holds a whole BLIP-2 / InstructBLIP model: config with text_config, vision and LM weights. */
async function isWholeModel(dir: string): Promise<boolean> {
  const { config, checkpoint } = await openCheckpointDir(dir);
  try {
    const cfg = parseModelConfig(config);
    const names = checkpoint.names();
    return (
      isBlip2Config(cfg) &&
      cfg.text !== undefined &&
      names.some((n) => n.startsWith('vision_model.')) &&
      names.some((n) => n.startsWith('language_model.'))
    );
  } finally {
    await checkpoint.close();
  }
}

/**
 * `qf export-onnx --part vision|qformer_projector|lm|all`: exports a whole HF BLIP-2 /
 * InstructBLIP directory as separate graphs (vision tower, Q-Former + projector, OPT prefill/step or
 * T5 encoder/decoder) plus `manifest.json`, through `exportBlip2OnnxFromDir` (staged and renamed
 * into place: a failed export leaves nothing behind). Needs no ONNX Runtime.
 */
export async function exportBlip2Onnx(
  modelDir: string,
  options: ExportOnnxOptions,
): Promise<ExportBlip2OnnxResult> {
  const dir = await requireDirectory(modelDir, 'model directory');
  const names = [...new Set((options.parts ?? []).map((p) => p.trim()))];
  const blip2 = names.filter((n) => BLIP2_CLI_PARTS.includes(n));
  const qformer = names.filter((n) => (QFORMER_PARTS as readonly string[]).includes(n));
  const unknown = names.filter((n) => !blip2.includes(n) && !qformer.includes(n));
  if (unknown.length > 0) parseParts(unknown);
  if (!(await isWholeModel(dir)))
    throw new CliError(
      'CLI_BAD_OPTION',
      `--part: unknown part "${blip2[0]}" (expected one of ${QFORMER_PARTS.join(', ')}) for this checkpoint: ` +
        `${BLIP2_PART_GROUPS.join(', ')} need a whole BLIP-2 / InstructBLIP model directory (vision tower and language model weights)`,
    );
  if (qformer.length > 0)
    throw new CliError(
      'CLI_BAD_OPTION',
      `--part: Q-Former parts (${qformer.join(', ')}) and whole-model parts (${blip2.join(', ')}) cannot be exported together; run qf export-onnx once for each`,
    );
  if (options.int8 || options.imageMask)
    throw new CliError(
      'CLI_BAD_OPTION',
      `${options.int8 ? '--int8' : '--image-mask'} applies to the Q-Former parts only (whole-model parts: --fp16, --external-data, --strict)`,
    );
  const weights = weightFormat(options) === 'float16' ? 'float16' : 'float32'; // --int8 was rejected above
  const outDir = resolve(options.out);
  const outKind = await pathKind(outDir);
  if (outKind !== 'missing' && outKind !== 'directory')
    throw new CliError('CLI_NOT_A_DIRECTORY', `--out exists and is not a directory: ${outDir}`);
  const t0 = performance.now();
  const manifest = await exportBlip2OnnxFromDir(dir, outDir, {
    parts: blip2 as (Blip2OnnxPart | Blip2PartGroup)[],
    weights,
    externalData: options.externalData ? 'always' : 'auto',
    strict: options.strict ?? false,
  });
  const exportMs = performance.now() - t0;
  const files: ExportedBlip2File[] = [];
  for (const p of manifest.parts) {
    const path = join(outDir, p.file);
    const dataPath = p.externalData ? join(outDir, p.externalData) : undefined;
    const bytes = (await stat(path)).size + (dataPath ? (await stat(dataPath)).size : 0);
    files.push({ part: p.part, path, dataPath, bytes, inputs: p.inputs, outputs: p.outputs });
  }
  const { ignored, ...rest } = manifest;
  return {
    outDir,
    manifestPath: join(outDir, BLIP2_MANIFEST),
    manifest: rest,
    weights,
    files,
    ignored,
    exportMs,
  };
}

/** Whether the `--part` names ask for a whole-model export. */
export function wantsBlip2Parts(parts: readonly string[] | undefined): boolean {
  return (parts ?? []).some((p) => BLIP2_CLI_PARTS.includes(p.trim()));
}

/**
 * The `qf export-onnx` command: {@link exportOnnx} (Q-Former parts) or, when `--part` names
 * whole-model parts, {@link exportBlip2Onnx}; plus the report.
 */
export async function exportOnnxCommand(
  modelDir: string,
  options: ExportOnnxOptions,
  streams: CliStreams,
): Promise<ExportOnnxResult | ExportBlip2OnnxResult> {
  if (wantsBlip2Parts(options.parts)) {
    const r = await exportBlip2Onnx(modelDir, options);
    if (r.ignored.length > 0)
      streams.err(
        `note: ${r.ignored.length} checkpoint tensor(s) not used by any part (e.g. ${r.ignored[0]}); --strict makes this an error\n`,
      );
    streams.out(formatExport(r));
    const total = r.files.reduce((n, f) => n + f.bytes, 0);
    const dims = new Set(r.files.flatMap((f) => [...f.inputs, ...f.outputs].flatMap((io) => io.dims)));
    // Axis names without their offsets (`4+prompt_length` -> prompt_length).
    const axes = [...dims].flatMap((d) => (typeof d === 'string' ? d.split('+') : []));
    const dynamic = [...new Set(axes.filter((a) => !/^\d+$/.test(a)))];
    streams.out(
      `\nwrote ${r.files.length} part${r.files.length === 1 ? '' : 's'} (${r.weights} weights, ${fmtBytes(total)}) to ${r.outDir} ` +
        `(export ${fmtMs(r.exportMs)})\n` +
        `dynamic axes: ${dynamic.join(', ')}\n` +
        `manifest: ${r.manifestPath}\n`,
    );
    return r;
  }
  const r = await exportOnnx(modelDir, options);
  if (r.ignored.length > 0) {
    streams.err(
      `note: ${r.ignored.length} checkpoint tensor(s) not used by the Q-Former (e.g. ${r.ignored[0]}); --strict makes this an error\n`,
    );
  }
  streams.out(formatExport(r));
  const total = r.files.reduce((n, f) => n + f.bytes, 0);
  const dims = new Set(r.files.flatMap((f) => [...f.inputs, ...f.outputs].flatMap((io) => io.dims)));
  const dynamic = ['batch', 'num_texts', 'num_image_tokens', 'text_length'].filter((d) => dims.has(d));
  streams.out(
    `\nwrote ${r.files.length} part${r.files.length === 1 ? '' : 's'} (${r.weights} weights, ${fmtBytes(total)}) to ${r.outDir} ` +
      `(load ${fmtMs(r.loadMs)}, export ${fmtMs(r.exportMs)})\n` +
      `dynamic axes: ${dynamic.join(', ')}\n` +
      `manifest: ${r.manifestPath}\n`,
  );
  return r;
}
