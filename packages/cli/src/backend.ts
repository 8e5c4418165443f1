import { OnnxBackend, type OrtModule, createOnnxBackend } from '@qf/backends/onnx';
import { type TfjsBackend, createTfjsBackend } from '@qf/backends/tfjs';
import { enableProdMode } from '@tensorflow/tfjs-core';
import { Option } from 'commander';
import { CliError } from './errors.js';

/** Backends `qf` can run on (Node). */
export const CLI_BACKENDS = ['tfjs-cpu', 'tfjs-wasm', 'onnx'] as const;
export type CliBackendName = (typeof CLI_BACKENDS)[number];

/** ONNX Runtime threads per operator when `--threads` is not given. */
export const DEFAULT_ONNX_THREADS = 2;

/** Options of {@link openBackend}. */
export interface OpenBackendOptions {
  /** `onnx` only: ONNX Runtime threads per operator (`intraOpNumThreads`); default {@link DEFAULT_ONNX_THREADS}. */
  readonly threads?: number | undefined;
}

/** The `--backend` option shared by every command that runs the model. */
export function backendOption(): Option {
  return new Option(
    '-b, --backend <name>',
    'where to run the model (onnx: ONNX Runtime via onnxruntime-node)',
  )
    .choices(CLI_BACKENDS)
    .default('tfjs-cpu');
}

/** The `--threads` option that goes with `--backend onnx`. */
export function threadsOption(parse: (value: string) => number): Option {
  return new Option(
    '--threads <n>',
    `ONNX Runtime threads per operator, with --backend onnx (default ${DEFAULT_ONNX_THREADS})`,
  ).argParser(parse);
}

/**
 * `--threads` applies to ONNX Runtime only; with a tfjs backend it is an error rather than silently
 * ignored.
 */
export function checkThreads(backend: CliBackendName, threads: number | undefined): void {
  if (threads !== undefined && backend !== 'onnx') {
    throw new CliError(
      'CLI_BAD_OPTION',
      `--threads applies to --backend onnx only (got --backend ${backend} --threads ${threads})`,
    );
  }
}

/**
 * Loads onnxruntime-node (the CPU runtime ships inside its npm package). Imported on demand so the
 * tfjs commands never load the native addon.
 */
export async function importOnnxRuntime(): Promise<OrtModule> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import('onnxruntime-node')) as unknown as Record<string, unknown>;
  } catch (e) {
    throw new CliError(
      'CLI_MISSING_DEPENDENCY',
      `--backend onnx needs onnxruntime-node, which could not be loaded: ${(e as Error).message}`,
      { cause: e },
    );
  }
  const ort = (mod['InferenceSession'] ? mod : mod['default']) as OrtModule | undefined;
  if (!ort?.InferenceSession || !ort.Tensor) {
    throw new CliError('CLI_MISSING_DEPENDENCY', 'onnxruntime-node loaded but exports no InferenceSession');
  }
  return ort;
}

/**
 * Opens a backend for the CLI. tfjs runs in production mode here (no debug checks and no "install
 * tfjs-node" banner on stderr); `onnx` records the model into ONNX graphs and runs them on ONNX
 * Runtime (onnxruntime-node) with `threads` threads per operator. Close it with {@link closeBackend}.
 */
export async function openBackend(name: 'tfjs-cpu' | 'tfjs-wasm'): Promise<TfjsBackend>;
export async function openBackend(name: 'onnx', options?: OpenBackendOptions): Promise<OnnxBackend>;
export async function openBackend(
  name: CliBackendName,
  options?: OpenBackendOptions,
): Promise<TfjsBackend | OnnxBackend>;
export async function openBackend(
  name: CliBackendName,
  options: OpenBackendOptions = {},
): Promise<TfjsBackend | OnnxBackend> {
  if (name === 'onnx') {
    const ort = await importOnnxRuntime();
    return createOnnxBackend({
      ort,
      intraOpNumThreads: options.threads ?? DEFAULT_ONNX_THREADS,
      name: 'onnx',
    });
  }
  enableProdMode();
  return createTfjsBackend(name === 'tfjs-wasm' ? 'wasm' : 'cpu');
}

/** Releases what {@link openBackend} opened: ONNX Runtime sessions (tfjs backends stay active). */
export async function closeBackend(backend: TfjsBackend | OnnxBackend): Promise<void> {
  if (backend instanceof OnnxBackend) await backend.dispose();
}
