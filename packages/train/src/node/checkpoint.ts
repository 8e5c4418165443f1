import { randomBytes } from 'node:crypto';
import { readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { HostTensor, ModelConfig } from '@qf/io';
import {
  atomicWriteFile,
  fsyncDir,
  openCheckpointDir,
  openSafetensors,
  writeCheckpointDir,
  writeSafetensorsFile,
} from '@qf/io/node';
import { STAGE1_NAMES, stage1CheckpointTensors } from '@qf/losses';
import { TrainError } from '../errors.js';
import type { TrainerSnapshot, TrainerStateJson } from '../trainer/types.js';

/** Files a training checkpoint adds to the HF model directory. */
export const TRAINER_STATE_JSON = 'trainer_state.json';
export const TRAINER_STATE_TENSORS = 'trainer_state.safetensors';
const TMP = '.qf-tmp-';
const OLD = '.qf-old-';
/** A `checkpoint-<step>` directory being pruned by {@link checkpointer}: renamed aside, then deleted. */
const PRUNED = '.qf-pruned-';

/** Options of {@link saveTrainingCheckpoint}. */
export interface SaveTrainingCheckpointOptions {
  /** The trainer to save (its snapshot is taken now), or a snapshot taken earlier. */
  readonly trainer: { snapshot(): Promise<TrainerSnapshot> } | TrainerSnapshot;
  /** `config.json`: a parsed config (written with `toHfConfigJson`) or raw HF JSON written as is. */
  readonly config: ModelConfig | Record<string, unknown>;
  /**
   * Parameters in `model.safetensors`: `all` (default: trainable and frozen, so the directory is a
   * complete HF model) or `trainable` (smaller; the frozen parts must come from elsewhere on resume).
   */
  readonly include?: 'all' | 'trainable';
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

const sibling = (dir: string, prefix: string) =>
  join(dirname(dir), `.${basename(dir)}${prefix}${process.pid}-${randomBytes(6).toString('hex')}`);

/**
 * Writes a training checkpoint directory atomically: an HF model directory (`config.json` +
 * `model.safetensors` with canonical names; stage 1 adds the tied `Qformer.cls.predictions.decoder.*`
 * copies, `temp` and `Qformer.cls.*` keep their LAVIS names) plus `trainer_state.safetensors`
 * (AdamW `exp_avg.<name>` / `exp_avg_sq.<name>`) and `trainer_state.json` (step, schedule, optimizer
 * settings, seed, data position...). Everything is written into a fresh sibling directory, fsynced,
 * then renamed to `dir` (an existing `dir` is moved aside first and removed after), so `dir` is
 * always absent, the old checkpoint or the new one, never a mix; {@link recoverTrainingCheckpoint}
 * repairs the one window (between the two renames) where only the moved-aside copy exists. This holds
 * whenever the process dies (SIGKILL at random points is tested, through {@link checkpointer}); after
 * a power loss it relies on the file system honouring fsync. A crash before the commit rename leaves
 * a hidden `.<name>.qf-tmp-*` sibling, removed by the next save or load of `dir`.
 */
export async function saveTrainingCheckpoint(
  dir: string,
  options: SaveTrainingCheckpointOptions,
): Promise<void> {
  const target = resolve(dir);
  const t = options.trainer;
  const snapshot = 'json' in t ? t : await t.snapshot();
  const trainable = new Set(snapshot.json.trainable);
  let tensors = new Map(
    [...snapshot.params].filter(([n]) => (options.include ?? 'all') === 'all' || trainable.has(n)),
  );
  if (tensors.has(STAGE1_NAMES.bias) && tensors.has(STAGE1_NAMES.wordEmbeddings))
    tensors = stage1CheckpointTensors(tensors);
  const state: Record<string, HostTensor> = {};
  for (const name of snapshot.json.trainable) {
    state[`exp_avg.${name}`] = need(snapshot.optimizer.expAvg, name);
    state[`exp_avg_sq.${name}`] = need(snapshot.optimizer.expAvgSq, name);
  }
  await recoverTrainingCheckpoint(target);
  const tmp = sibling(target, TMP);
  try {
    await writeCheckpointDir(tmp, { config: options.config, tensors: Object.fromEntries(tensors) });
    await writeSafetensorsFile(join(tmp, TRAINER_STATE_TENSORS), state, { format: 'qf-trainer-state' });
    await atomicWriteFile(join(tmp, TRAINER_STATE_JSON), `${JSON.stringify(snapshot.json, null, 2)}\n`);
    await fsyncDir(tmp);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
  let old: string | undefined;
  if (await exists(target)) {
    old = sibling(target, OLD);
    await rename(target, old);
  }
  await rename(tmp, target);
  await fsyncDir(dirname(target));
  if (old) await rm(old, { recursive: true, force: true });
}

/**
 * Repairs what an interrupted {@link saveTrainingCheckpoint} can leave next to `dir`: when `dir` is
 * missing but a moved-aside copy exists, the newest complete version (a finished temp directory, else
 * the old copy) is renamed back to `dir`; leftover temp and old copies are removed.
 */
export async function recoverTrainingCheckpoint(dir: string): Promise<void> {
  const target = resolve(dir);
  const parent = dirname(target);
  const stem = `.${basename(target)}`;
  let entries: string[];
  try {
    entries = await readdir(parent);
  } catch {
    return;
  }
  const tmps = entries.filter((e) => e.startsWith(`${stem}${TMP}`)).map((e) => join(parent, e));
  const olds = entries.filter((e) => e.startsWith(`${stem}${OLD}`)).map((e) => join(parent, e));
  if (!(await exists(target)) && olds.length > 0) {
    // A finished temp directory is the newer version; fsync before the moved-aside copy was made.
    const done = [];
    for (const d of tmps) if (await exists(join(d, TRAINER_STATE_JSON))) done.push(d);
    const pick = done[0] ?? olds[0];
    if (pick) await rename(pick, target);
    await fsyncDir(parent);
  }
  for (const d of [...tmps, ...olds]) await rm(d, { recursive: true, force: true }).catch(() => undefined);
}

/**
 * Reads a training checkpoint: its state JSON, optimizer moments and every model tensor (float32),
 * without the tied stage-1 copies.
 * @throws TrainError `TRAIN_CHECKPOINT` when the directory or its trainer state is missing or malformed
 */
export async function loadTrainingCheckpoint(dir: string): Promise<TrainerSnapshot> {
  const target = resolve(dir);
  await recoverTrainingCheckpoint(target);
  const json = await readStateJson(target);
  const tensorFile = join(target, TRAINER_STATE_TENSORS);
  const expAvg = new Map<string, HostTensor>();
  const expAvgSq = new Map<string, HostTensor>();
  const file = await openSafetensors(tensorFile).catch((err: unknown) => {
    throw new TrainError('TRAIN_CHECKPOINT', `${tensorFile}: ${(err as Error).message}`, { cause: err });
  });
  try {
    for (const name of json.trainable) {
      expAvg.set(name, await file.read(`exp_avg.${name}`, { float32: true }));
      expAvgSq.set(name, await file.read(`exp_avg_sq.${name}`, { float32: true }));
    }
  } catch (err) {
    throw new TrainError('TRAIN_CHECKPOINT', `${tensorFile}: ${(err as Error).message}`, { cause: err });
  } finally {
    await file.close();
  }
  const params = new Map<string, HostTensor>();
  const { checkpoint } = await openCheckpointDir(target).catch((err: unknown) => {
    throw new TrainError('TRAIN_CHECKPOINT', `${target}: ${(err as Error).message}`, { cause: err });
  });
  try {
    const tied = new Set<string>([STAGE1_NAMES.decoderWeight, STAGE1_NAMES.decoderBias]);
    for (const name of checkpoint.names())
      if (!tied.has(name)) params.set(name, await checkpoint.read(name, { float32: true }));
  } finally {
    await checkpoint.close();
  }
  return { json, optimizer: { step: json.optimizer.step, expAvg, expAvgSq }, params };
}

/**
 * Restores a trainer from a training checkpoint (see `Trainer.restore`): trainable parameters,
 * AdamW moments and step, schedule position, seed, clipping and data position. Build the trainer as
 * for the original run (same model, frozen parts, data source, options), then call this.
 * @returns the number of steps already done
 */
export async function resumeTraining(
  dir: string,
  trainer: { restore(s: TrainerSnapshot): Promise<void> },
): Promise<number> {
  const snapshot = await loadTrainingCheckpoint(dir);
  await trainer.restore(snapshot);
  return snapshot.json.step;
}

async function readStateJson(dir: string): Promise<TrainerStateJson> {
  const path = join(dir, TRAINER_STATE_JSON);
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : (err as Error).message;
    throw new TrainError('TRAIN_CHECKPOINT', `${path}: ${why}`, { cause: err });
  }
  const j = json as Partial<TrainerStateJson>;
  if (j?.format !== 'qf-trainer-state' || j.version !== 1 || !Array.isArray(j.trainable) || !j.optimizer)
    throw new TrainError('TRAIN_CHECKPOINT', `${path}: not a version-1 qf trainer state`);
  return j as TrainerStateJson;
}

function need(map: ReadonlyMap<string, HostTensor>, name: string): HostTensor {
  const t = map.get(name);
  if (!t) throw new TrainError('TRAIN_STATE', `optimizer state has no moment for "${name}"`);
  return t;
}

/** What {@link checkpointer} saves: a trainer (its step names the directory). */
export interface CheckpointSource {
  readonly step: number;
  snapshot(): Promise<TrainerSnapshot>;
}

/** Options of {@link checkpointer}. */
export interface CheckpointerOptions {
  /** Save every this many steps (and after the last). */
  readonly every: number;
  readonly config: ModelConfig | Record<string, unknown>;
  readonly include?: 'all' | 'trainable';
  /** Keep only the newest N (a positive integer) `checkpoint-*` directories (default: all). */
  readonly keepLast?: number;
}

const CHECKPOINT_DIR = /^checkpoint-(\d+)$/;
const PRUNED_DIR = /^\.checkpoint-\d+\.qf-pruned-/;

/**
 * The `checkpoint` option of a trainer that writes `outDir/checkpoint-<step>` (atomically, see
 * {@link saveTrainingCheckpoint}) and prunes old ones. {@link latestCheckpoint} finds the newest.
 *
 * Crash safety (one writer per `outDir`; SIGKILL of the training process at random points of its
 * saves and prunes is tested; after a power loss this relies on the file system honouring fsync): every
 * `checkpoint-<step>` directory is complete or absent, never partly written or partly deleted. A new
 * one appears by one rename of a finished temp directory (the commit point); a pruned one is renamed
 * aside (`.checkpoint-<step>.qf-pruned-*`) before it is deleted. So after a crash
 * {@link latestCheckpoint} returns the checkpoint of the last `save` that returned, or that of the
 * save in progress if it had passed its commit point, and every other `checkpoint-<step>` directory
 * still loads. Leftovers (hidden `.checkpoint-<step>.qf-*` entries) are ignored by
 * {@link latestCheckpoint} and removed by later saves: a temp copy when that step is saved again
 * (as it is after resuming), pruned copies at the next prune.
 * @throws TrainError `TRAIN_OPTIONS` when `keepLast` is not a positive integer (0 would delete the
 *   checkpoint just written)
 */
export function checkpointer(
  outDir: string,
  options: CheckpointerOptions,
): { every: number; save: (trainer: CheckpointSource) => Promise<string> } {
  const keep = options.keepLast;
  if (keep !== undefined && !(Number.isInteger(keep) && keep >= 1))
    throw new TrainError('TRAIN_OPTIONS', `keepLast must be a positive integer, got ${keep}`);
  return {
    every: options.every,
    async save(trainer) {
      const dir = join(outDir, `checkpoint-${String(trainer.step).padStart(6, '0')}`);
      await saveTrainingCheckpoint(dir, {
        trainer,
        config: options.config,
        ...(options.include ? { include: options.include } : {}),
      });
      if (keep !== undefined) {
        const all = await listCheckpoints(outDir);
        for (const old of all.slice(0, Math.max(0, all.length - keep))) {
          const aside = sibling(old.dir, PRUNED);
          try {
            await rename(old.dir, aside);
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
            throw err;
          }
          await fsyncDir(outDir);
          await rm(aside, { recursive: true, force: true });
        }
        // copies a crash left half deleted
        for (const e of await readdir(outDir))
          if (PRUNED_DIR.test(e)) await rm(join(outDir, e), { recursive: true, force: true });
      }
      return dir;
    },
  };
}

async function listCheckpoints(outDir: string): Promise<{ step: number; dir: string }[]> {
  let entries: string[];
  try {
    entries = await readdir(outDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new TrainError('TRAIN_CHECKPOINT', `${outDir}: ${(err as Error).message}`, { cause: err });
  }
  return entries
    .map((e) => [e, CHECKPOINT_DIR.exec(e)] as const)
    .filter((x): x is readonly [string, RegExpExecArray] => x[1] !== null)
    .map(([e, m]) => ({ step: Number(m[1]), dir: join(outDir, e) }))
    .sort((a, b) => a.step - b.step);
}

/**
 * The newest complete `checkpoint-<step>` directory under `outDir` (one with its
 * `trainer_state.json`), or undefined. Hidden leftovers of an interrupted save or prune are never
 * returned; see {@link checkpointer} for what a crash can leave.
 */
export async function latestCheckpoint(outDir: string): Promise<string | undefined> {
  const all = await listCheckpoints(outDir);
  for (const c of all.reverse()) if (await exists(join(c.dir, TRAINER_STATE_JSON))) return c.dir;
  return undefined;
}
