import { randomBytes } from 'node:crypto';
import { copyFile, link, mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { planShards } from '../checkpoint/shard-plan.js';
import type { ModelConfig } from '../config/blip2.js';
import { stringifyHfConfig, toHfConfigJson } from '../config/hf-json.js';
import type { HostTensor } from '../dtypes.js';
import { planSafetensors, plannedTensorBytes } from '../safetensors/writer.js';
import { atomicWriteFile, atomicWriteFileWith, fsyncDir, writeAll } from './atomic.js';
import { PENDING_COMMIT_DIR } from './checkpoint-dir.js';

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
 * The commit journal of {@link writeCheckpointDir}: a complete new version, moved here by one atomic
 * rename. While it exists it is the checkpoint (`openCheckpointDir` reads it in preference to the
 * files beside it); it is removed once its files are in place.
 */
export { PENDING_COMMIT_DIR };
const STAGING_PREFIX = '.qf-staging-';
const TRASH_PREFIX = '.qf-trash-';
const PLACE_PREFIX = '.qf-place-';
const INDEX = 'model.safetensors.index.json';
const SINGLE = 'model.safetensors';
const HF_SHARD = /^model-\d{5}-of-\d{5}\.safetensors$/;

function uniqueName(prefix: string): string {
  return `${prefix}${process.pid}-${randomBytes(6).toString('hex')}`;
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** Order in which committed files are placed: shards, then index / single file, config last. */
function placeOrder(file: string): number {
  if (file === 'config.json') return 3;
  if (file === INDEX || file === SINGLE) return 2;
  return 1;
}

/**
 * Puts `src` (inside the commit journal) at `dest` atomically, leaving `src` in place: a hard link
 * (or, where links are not supported, an fsynced copy) under a temp name, renamed over `dest`.
 */
async function place(dir: string, src: string, dest: string): Promise<void> {
  const tmp = join(dir, uniqueName(PLACE_PREFIX));
  try {
    try {
      await link(src, tmp);
    } catch {
      await copyFile(src, tmp);
      const h = await open(tmp, 'r+');
      try {
        await h.sync();
      } finally {
        await h.close();
      }
    }
    await rename(tmp, dest);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
}

/** Moves the files of a committed version into place, removes the other layout's files, drops the journal. */
async function finishCommit(dir: string): Promise<void> {
  const pending = join(dir, PENDING_COMMIT_DIR);
  const files = (await readdir(pending)).sort((a, b) => placeOrder(a) - placeOrder(b) || (a < b ? -1 : 1));
  for (const f of files) await place(dir, join(pending, f), join(dir, f));
  const sharded = files.includes(INDEX);
  const keep = new Set(files);
  for (const f of await readdir(dir)) {
    // A stale file of the other layout would shadow (or confuse) the one just written.
    const stale = sharded
      ? f === SINGLE || (HF_SHARD.test(f) && !keep.has(f))
      : f === INDEX || HF_SHARD.test(f);
    if (stale) await rm(join(dir, f), { force: true });
  }
  await fsyncDir(dir);
  const trash = join(dir, uniqueName(TRASH_PREFIX));
  await rename(pending, trash);
  await fsyncDir(dir);
  await rm(trash, { recursive: true, force: true });
}

/**
 * Brings a checkpoint directory left by an interrupted {@link writeCheckpointDir} back to the plain HF
 * layout: a committed version still in the journal is moved into place (so tools that know nothing
 * of the journal, like HF transformers, see it too), and leftovers of a write that never committed
 * (staging directories, temp files) are removed. `writeCheckpointDir` calls it first; call it after a
 * crash to repair a directory without writing a new version. Not safe while another process writes
 * the same directory.
 */
export async function recoverCheckpointDir(dir: string): Promise<void> {
  if (await isDir(join(dir, PENDING_COMMIT_DIR))) await finishCommit(dir);
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    return; // no directory yet
  }
  for (const e of entries) {
    if (e.startsWith(STAGING_PREFIX) || e.startsWith(TRASH_PREFIX) || e.startsWith(PLACE_PREFIX)) {
      await rm(join(dir, e), { recursive: true, force: true });
    }
  }
}

/**
 * Writes an HF model directory: `config.json` plus `model.safetensors`, or shards and
 * `model.safetensors.index.json` when `maxShardBytes` splits them. Every tensor is validated before
 * anything is written.
 *
 * Crash safety: the directory always holds exactly one complete version for `openCheckpointDir`,
 * the previous one or the new one, whenever the process dies (SIGKILL at random points is tested;
 * after a power loss this relies on the file system honouring fsync). The new files are written and
 * fsynced in a staging directory inside `dir`, which one atomic rename turns into the commit journal
 * `.qf-commit` (the commit point); its files are then hard-linked into place (config.json last),
 * files of the other layout and shards of older versions (`model-NNNNN-of-NNNNN.safetensors` not in
 * the new index) removed, and the journal deleted. A crash after the commit point leaves the journal, which
 * `openCheckpointDir` reads instead of the files beside it and the next write (or
 * {@link recoverCheckpointDir}) finishes. A crash before it leaves the previous version untouched
 * and only a staging directory, which the next write removes. One writer at a time per directory.
 */
export async function writeCheckpointDir(dir: string, options: WriteCheckpointOptions): Promise<void> {
  const metadata = options.metadata ?? { format: 'pt' };
  const plan = planShards(options.tensors, options.maxShardBytes);
  for (const { names } of plan.files)
    planSafetensors(Object.fromEntries(names.map((n) => [n, options.tensors[n]!])), metadata);
  const config = isModelConfig(options.config) ? toHfConfigJson(options.config) : options.config;
  const configText = stringifyHfConfig(config);
  if (!(await isDir(dir))) {
    await mkdir(dir, { recursive: true });
    await fsyncDir(dirname(resolve(dir)));
  }
  await recoverCheckpointDir(dir);
  const staging = join(dir, uniqueName(STAGING_PREFIX));
  await mkdir(staging);
  try {
    for (const { file, names } of plan.files) {
      const subset = Object.fromEntries(names.map((n) => [n, options.tensors[n]!]));
      await writeSafetensorsFile(join(staging, file), subset, metadata);
    }
    if (plan.index !== undefined) {
      await atomicWriteFile(join(staging, INDEX), `${JSON.stringify(plan.index, null, 2)}\n`);
    }
    await atomicWriteFile(join(staging, 'config.json'), configText);
    await fsyncDir(staging);
    await rename(staging, join(dir, PENDING_COMMIT_DIR)); // the commit point
  } catch (err) {
    await rm(staging, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
  await fsyncDir(dir);
  await finishCommit(dir);
}
