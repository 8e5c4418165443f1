import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { planShards } from '../checkpoint/shard-plan.js';
import type { ModelConfig } from '../config/blip2.js';
import { stringifyHfConfig, toHfConfigJson } from '../config/hf-json.js';
import type { HostTensor } from '../dtypes.js';
import { planSafetensors, plannedTensorBytes } from '../safetensors/writer.js';
import { atomicWriteFile, atomicWriteFileWith, writeAll } from './atomic.js';

/**
 * Writes tensors (and optional string metadata) as a safetensors file, atomically, streaming one
 * tensor at a time (no whole-file buffer). Every tensor is validated before the file is created.
 */
export async function writeSafetensorsFile(
  path: string,
  tensors: Readonly<Record<string, HostTensor>>,
  metadata?: Readonly<Record<string, string>>,
): Promise<void> {
  const plan = planSafetensors(tensors, metadata);
  await atomicWriteFileWith(path, async (handle) => {
    await writeAll(handle, plan.header);
    for (const t of plan.tensors) await writeAll(handle, plannedTensorBytes(t));
  });
}

/** Options of {@link writeCheckpointDir}. */
export interface WriteCheckpointOptions {
  /** The model config, written as an HF `config.json` (a parsed config, or raw JSON written as is). */
  readonly config: ModelConfig | Record<string, unknown>;
  readonly tensors: Readonly<Record<string, HostTensor>>;
  /** Safetensors metadata of every file (default `{format: 'pt'}`, which HF transformers expects). */
  readonly metadata?: Readonly<Record<string, string>>;
  /** Split into HF-style shards of at most this many bytes of tensor data (default: one file). */
  readonly maxShardBytes?: number;
}

function isModelConfig(c: WriteCheckpointOptions['config']): c is ModelConfig {
  return typeof (c as ModelConfig).qformer === 'object' && typeof (c as ModelConfig).raw === 'object';
}

/**
 * Writes an HF model directory: `config.json` plus `model.safetensors`, or shards and
 * `model.safetensors.index.json` when `maxShardBytes` splits them. Each file is written atomically;
 * the weights go first and `config.json` last, so a directory with a config is complete. A stale
 * `model.safetensors` (when writing shards) or index (when writing one file) is removed.
 */
export async function writeCheckpointDir(dir: string, options: WriteCheckpointOptions): Promise<void> {
  const metadata = options.metadata ?? { format: 'pt' };
  const plan = planShards(options.tensors, options.maxShardBytes);
  for (const { names } of plan.files)
    planSafetensors(Object.fromEntries(names.map((n) => [n, options.tensors[n]!])), metadata);
  await mkdir(dir, { recursive: true });
  for (const { file, names } of plan.files) {
    const subset = Object.fromEntries(names.map((n) => [n, options.tensors[n]!]));
    await writeSafetensorsFile(join(dir, file), subset, metadata);
  }
  if (plan.index !== undefined) {
    await atomicWriteFile(
      join(dir, 'model.safetensors.index.json'),
      `${JSON.stringify(plan.index, null, 2)}\n`,
    );
  }
  // A stale file of the other layout would shadow (or confuse) the one just written.
  await rm(join(dir, plan.index === undefined ? 'model.safetensors.index.json' : 'model.safetensors'), {
    force: true,
  });
  const config = isModelConfig(options.config) ? toHfConfigJson(options.config) : options.config;
  await atomicWriteFile(join(dir, 'config.json'), stringifyHfConfig(config));
}
