import { type TfjsBackend, createTfjsBackend } from '@qf/backends/tfjs';
import { enableProdMode } from '@tensorflow/tfjs-core';
import { Option } from 'commander';

/** Backends `qf` can run on (Node). */
export const CLI_BACKENDS = ['tfjs-cpu', 'tfjs-wasm'] as const;
export type CliBackendName = (typeof CLI_BACKENDS)[number];

/** The `--backend` option shared by every command that runs the model. */
export function backendOption(): Option {
  return new Option('-b, --backend <name>', 'where to run the model')
    .choices(CLI_BACKENDS)
    .default('tfjs-cpu');
}

/**
 * Activates a tfjs backend for the CLI. tfjs runs in production mode here: no debug checks and no
 * "install tfjs-node" banner on stderr.
 */
export async function openBackend(name: CliBackendName): Promise<TfjsBackend> {
  enableProdMode();
  return createTfjsBackend(name === 'tfjs-wasm' ? 'wasm' : 'cpu');
}
