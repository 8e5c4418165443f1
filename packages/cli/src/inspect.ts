import { readFile, stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import {
  type Checkpoint,
  type CheckpointLayout,
  ConfigError,
  SafetensorsFile,
  ShardedCheckpoint,
  detectCheckpointLayout,
  parseModelConfig,
  toCanonicalName,
} from '@qf/io';
import { openCheckpointDir, openSafetensors } from '@qf/io/node';
import { type ConfigSummary, summarizeConfig } from './config-summary.js';
import { CliError } from './errors.js';
import { pathKind } from './paths.js';

/** One tensor as listed by `qf inspect`. */
export interface TensorRow {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly bytes: number;
}

/** Which Q-Former parts a checkpoint holds (by canonical name under its detected layout). */
export interface CheckpointParts {
  readonly queryTokens: boolean;
  readonly textPath: boolean;
  readonly retrievalHeads: boolean;
  readonly languageProjection: boolean;
  readonly visionTower: boolean;
  readonly languageModel: boolean;
  /** Tensors with no canonical name (buffers, unknown names). */
  readonly unmapped: number;
}

/** `qf inspect` of a safetensors file. */
export interface SafetensorsReport {
  readonly kind: 'safetensors';
  readonly path: string;
  readonly fileBytes: number;
  readonly tensorBytes: number;
  readonly metadata: Readonly<Record<string, string>>;
  readonly tensors: readonly TensorRow[];
}

/** `qf inspect` of an HF model directory. */
export interface ModelDirReport {
  readonly kind: 'model-dir';
  readonly path: string;
  readonly weights: { readonly format: 'single' | 'sharded'; readonly files: readonly string[] };
  readonly config: ConfigSummary;
  readonly layout: CheckpointLayout;
  readonly parts: CheckpointParts;
  readonly tensorBytes: number;
  /** `__metadata__` of model.safetensors, or the index's `metadata` when sharded. */
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly tensors: readonly TensorRow[];
}

/** `qf inspect` of a config.json file. */
export interface ConfigReport {
  readonly kind: 'config';
  readonly path: string;
  readonly config: ConfigSummary;
}

export type InspectReport = SafetensorsReport | ModelDirReport | ConfigReport;

function tensorRows(c: Checkpoint): TensorRow[] {
  return c.names().map((name) => {
    const info = c.info(name);
    return { name, dtype: info?.dtype ?? '?', shape: [...(info?.shape ?? [])], bytes: info?.byteLength ?? 0 };
  });
}

const sum = (rows: readonly TensorRow[]) => rows.reduce((n, r) => n + r.bytes, 0);

/** Which parts of a Q-Former model the tensor names cover. */
export function checkpointParts(names: readonly string[], layout: CheckpointLayout): CheckpointParts {
  const canonical = new Set<string>();
  let unmapped = 0;
  for (const n of names) {
    const c = toCanonicalName(layout, n);
    if (c === undefined) unmapped++;
    else canonical.add(c);
  }
  const has = (n: string) => canonical.has(n);
  const any = (prefix: string) => [...canonical].some((n) => n.startsWith(prefix));
  return {
    queryTokens: has('query_tokens'),
    textPath:
      has('embeddings.word_embeddings.weight') && has('qformer.encoder.layer.0.intermediate.dense.weight'),
    retrievalHeads:
      has('itm_head.weight') && has('vision_projection.weight') && has('text_projection.weight'),
    languageProjection: has('language_projection.weight'),
    visionTower: any('vision_model.'),
    languageModel: any('language_model.'),
    unmapped,
  };
}

async function inspectSafetensors(path: string): Promise<SafetensorsReport> {
  const file = await openSafetensors(path);
  try {
    const tensors = tensorRows(file);
    const fileBytes = (await stat(path)).size;
    return {
      kind: 'safetensors',
      path,
      fileBytes,
      tensorBytes: sum(tensors),
      metadata: { ...file.metadata },
      tensors,
    };
  } finally {
    await file.close();
  }
}

async function inspectConfigFile(path: string): Promise<ConfigReport> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new ConfigError('(root)', `${path} is not valid JSON: ${(err as Error).message}`);
  }
  return { kind: 'config', path, config: summarizeConfig(parseModelConfig(json)) };
}

async function inspectModelDir(path: string): Promise<ModelDirReport> {
  const { config, checkpoint } = await openCheckpointDir(path);
  try {
    const summary = summarizeConfig(parseModelConfig(config));
    const tensors = tensorRows(checkpoint);
    const names = tensors.map((t) => t.name);
    const layout = detectCheckpointLayout(names);
    const sharded = checkpoint instanceof ShardedCheckpoint;
    return {
      kind: 'model-dir',
      path,
      weights: sharded
        ? { format: 'sharded', files: ['model.safetensors.index.json', ...checkpoint.index.shards] }
        : { format: 'single', files: ['model.safetensors'] },
      config: summary,
      layout,
      parts: checkpointParts(names, layout),
      tensorBytes: sum(tensors),
      metadata: sharded
        ? { ...checkpoint.index.metadata }
        : checkpoint instanceof SafetensorsFile
          ? { ...checkpoint.metadata }
          : {},
      tensors,
    };
  } finally {
    await checkpoint.close();
  }
}

/**
 * Inspects a safetensors file, a `.json` config file, or an HF model directory. Bad input throws the
 * typed error of @qf/io (SafetensorsError, CheckpointError, ConfigError...).
 */
export async function inspectPath(target: string): Promise<InspectReport> {
  const path = resolve(target);
  const kind = await pathKind(path);
  if (kind === 'missing') throw new CliError('CLI_NOT_FOUND', `no such file or directory: ${path}`);
  if (kind === 'directory') return inspectModelDir(path);
  if (kind !== 'file') throw new CliError('CLI_NOT_A_FILE', `not a file or directory: ${path}`);
  return basename(path).toLowerCase().endsWith('.json') ? inspectConfigFile(path) : inspectSafetensors(path);
}
