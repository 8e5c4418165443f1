import { readFile, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ShardedCheckpoint } from '../checkpoint/sharded.js';
import type { Checkpoint } from '../checkpoint/types.js';
import { CheckpointError, SafetensorsError } from '../errors.js';
import { SafetensorsFile } from '../safetensors/file.js';
import { fileSource } from './file-source.js';

/** Opens a safetensors file for lazy reads (reads and validates only its header now). */
export async function openSafetensors(path: string): Promise<SafetensorsFile> {
  return SafetensorsFile.open(await fileSource(path));
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/**
 * Opens a sharded checkpoint from its `model.safetensors.index.json`; shards are resolved next to the
 * index. A shard that does not exist throws SafetensorsError `SAFETENSORS_SHARD_MISSING`.
 */
export async function openShardedSafetensors(indexPath: string): Promise<ShardedCheckpoint> {
  let text: string;
  try {
    text = await readFile(indexPath, 'utf8');
  } catch (err) {
    throw new SafetensorsError('SAFETENSORS_INDEX_UNREADABLE', `${indexPath}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const dir = dirname(indexPath);
  return ShardedCheckpoint.open(text, async (file) => {
    const path = join(dir, file);
    if (!(await isFile(path))) {
      throw new SafetensorsError(
        'SAFETENSORS_SHARD_MISSING',
        `shard "${file}" listed in ${indexPath} does not exist`,
      );
    }
    return openSafetensors(path);
  });
}

/** A model directory opened by {@link openCheckpointDir}. */
export interface CheckpointDir {
  /** The parsed `config.json` (validate it with `parseModelConfig`). */
  readonly config: unknown;
  readonly checkpoint: Checkpoint;
  /** The directory, resolved to an absolute path. */
  readonly dir: string;
}

/**
 * The commit journal of `writeCheckpointDir`: a complete version moved in by one atomic rename, whose
 * files are then put in place. While it exists, it is the checkpoint.
 */
export const PENDING_COMMIT_DIR = '.qf-commit';

/**
 * Opens an HF model directory: parses `config.json` and opens `model.safetensors`, or else the shards
 * of `model.safetensors.index.json`. Throws CheckpointError `CHECKPOINT_NO_CONFIG`,
 * `CHECKPOINT_BAD_CONFIG` or `CHECKPOINT_NO_WEIGHTS` naming the directory. When a `writeCheckpointDir`
 * was interrupted after its commit point, the committed version is read from its journal
 * (`.qf-commit/`), so a reader always sees one complete version.
 */
export async function openCheckpointDir(dir: string): Promise<CheckpointDir> {
  const abs = resolve(dir);
  const pending = join(abs, PENDING_COMMIT_DIR);
  if (await isFile(join(pending, 'config.json'))) {
    try {
      return { ...(await openModelFiles(pending)), dir: abs };
    } catch (err) {
      // A concurrent writer may have finished the commit (files in place, journal removed) meanwhile.
      if (await isFile(join(pending, 'config.json'))) throw err;
    }
  }
  return { ...(await openModelFiles(abs)), dir: abs };
}

async function openModelFiles(abs: string): Promise<Omit<CheckpointDir, 'dir'>> {
  const configPath = join(abs, 'config.json');
  if (!(await isFile(configPath))) {
    throw new CheckpointError('CHECKPOINT_NO_CONFIG', `${abs}: no config.json in the checkpoint directory`);
  }
  let config: unknown;
  try {
    config = JSON.parse(await readFile(configPath, 'utf8'));
  } catch (err) {
    throw new CheckpointError(
      'CHECKPOINT_BAD_CONFIG',
      `${configPath}: not valid JSON: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  const single = join(abs, 'model.safetensors');
  const index = join(abs, 'model.safetensors.index.json');
  let checkpoint: Checkpoint;
  if (await isFile(single)) checkpoint = await openSafetensors(single);
  else if (await isFile(index)) checkpoint = await openShardedSafetensors(index);
  else {
    throw new CheckpointError(
      'CHECKPOINT_NO_WEIGHTS',
      `${abs}: neither model.safetensors nor model.safetensors.index.json in the checkpoint directory`,
    );
  }
  return { config, checkpoint };
}
