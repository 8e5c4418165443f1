/**
 * Crash safety of checkpoint writes: a child process overwrites one checkpoint directory with new
 * versions in a loop (single file, 3 shards, 6 shards in turn) and is killed with SIGKILL at a
 * random moment, many times. After every kill the directory must open with `openCheckpointDir` as
 * exactly one complete version (config and every tensor agree) that the child had started writing,
 * no older than the last one it finished.
 *
 * Kills: `QF_CRASH_RUNS` (default 20); `pnpm fuzz` runs 300. The child runs the TypeScript sources
 * through tsx (a devDependency of the workspace's benchmarks package).
 */
import { spawn } from 'node:child_process';
import { cp, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { openCheckpointDir, writeCheckpointDir } from '../src/node/index.js';
import { recoverCheckpointDir } from '../src/node/write.js';
import { readVersion, versionCheckpoint } from './fixtures/checkpoint-versions.js';
import { withTempDir } from './helpers.js';
import { killRng as rng, tsxLoaderUrl } from '../../../test-utils/crash.js';

const KILLS = Math.max(1, Number(process.env.QF_CRASH_RUNS ?? 20) || 20);
/** Kill delays are uniform in [0, DELAY_MS) after the writer is ready. */
const DELAY_MS = Math.max(1, Number(process.env.QF_CRASH_DELAY_MS ?? 40) || 40);
const child = fileURLToPath(new URL('./fixtures/checkpoint-writer.ts', import.meta.url));
/** tsx's loader, resolved from the benchmarks package that depends on it. */
const tsx = tsxLoaderUrl();

interface Run {
  /** Highest version the child began writing. */
  started: number;
  /** Highest version it finished (or the version on disk before it started, when none). */
  done: number;
  stderr: string;
}

/**
 * Starts the writer at version `from + 1` on a directory holding version `onDisk`, kills it `delayMs`
 * after it is ready, and reports how far it got.
 */
function runAndKill(dir: string, from: number, onDisk: number, delayMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', tsx, child, dir, String(from)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const run: Run = { started: from, done: onDisk, stderr: '' };
    let out = '';
    let timer: NodeJS.Timeout | undefined;
    const guard = setTimeout(() => proc.kill('SIGKILL'), 60_000);
    proc.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      const lines = out.split('\n');
      out = lines.pop() ?? '';
      for (const line of lines) {
        if (line === 'ready' && timer === undefined) timer = setTimeout(() => proc.kill('SIGKILL'), delayMs);
        const m = /^(start|done) (\d+)$/.exec(line);
        if (m?.[1] === 'start') run.started = Number(m[2]);
        if (m?.[1] === 'done') run.done = Number(m[2]);
      }
    });
    proc.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      run.stderr += chunk;
    });
    proc.on('error', reject);
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(guard);
      if (signal !== 'SIGKILL') {
        reject(new Error(`writer exited on its own (code ${code}, signal ${signal}):\n${run.stderr}`));
      } else resolve(run);
    });
  });
}

async function loadVersion(dir: string): Promise<number> {
  const { config, checkpoint } = await openCheckpointDir(dir);
  try {
    return await readVersion(checkpoint, config);
  } finally {
    await checkpoint.close();
  }
}

describe('crash safety of writeCheckpointDir', () => {
  it(
    `SIGKILL at random points while overwriting a checkpoint (${KILLS} kills): always one complete version`,
    async () => {
      await withTempDir(async (dir) => {
        await writeCheckpointDir(dir, versionCheckpoint(0));
        const next = rng(Number(process.env.QF_CRASH_SEED ?? 20_240_613));
        let version = 0; // the last version number used
        let onDisk = 0;
        let writesCompleted = 0;
        let interrupted = 0;
        for (let k = 0; k < KILLS; k++) {
          // a version takes a few ms to write here: delays up to a few writes' worth land in every phase
          const delay = Math.floor(next() * DELAY_MS);
          const run = await runAndKill(dir, version, onDisk, delay);
          writesCompleted += Math.max(0, run.done - version);
          if (run.started > run.done) interrupted++;
          const loaded = await loadVersion(dir);
          expect(
            loaded,
            `kill ${k} after ${delay} ms (started ${run.started}, done ${run.done})`,
          ).toBeGreaterThanOrEqual(run.done);
          expect(loaded).toBeLessThanOrEqual(run.started);
          // finishing an interrupted commit (as the next write does) leaves the same version in the
          // plain HF layout, which tools that know nothing of the commit journal read
          await recoverCheckpointDir(dir);
          const entries = await readdir(dir);
          expect(entries.filter((e) => e.startsWith('.'))).toEqual([]);
          expect(await loadVersion(dir)).toBe(loaded);
          version = run.started;
          onDisk = loaded;
          if (process.env.QF_CRASH_DEBUG)
            console.log(`kill ${k}: ${delay} ms, started ${run.started}, done ${run.done}, loaded ${loaded}`);
        }
        // the kills must have interrupted writes (not only start-up) for the test to mean anything
        expect(interrupted).toBeGreaterThan(KILLS / 4);
        expect(writesCompleted).toBeGreaterThan(0);
        // a clean write afterwards leaves exactly the files of its layout
        await writeCheckpointDir(dir, versionCheckpoint(version + 1));
        expect(await loadVersion(dir)).toBe(version + 1);
        const files = (await readdir(dir)).sort();
        const layout = (version + 1) % 3;
        expect(files).toContain('config.json');
        expect(files.filter((f) => f.startsWith('.'))).toEqual([]);
        if (layout === 0) expect(files).toEqual(['config.json', 'model.safetensors']);
        else {
          const shards = layout === 1 ? 3 : 6;
          expect(files.length).toBe(2 + shards);
          expect(files).toContain('model.safetensors.index.json');
        }
      });
    },
    60_000 + KILLS * 5_000,
  );

  it('a crash after the commit point: the journal is read, and recovery puts it in place', async () => {
    await withTempDir(async (root) => {
      const dir = join(root, 'ckpt');
      await writeCheckpointDir(dir, versionCheckpoint(1)); // sharded (3 shards)
      // version 3 (single file) committed to the journal, then the writer died before placing it
      await writeCheckpointDir(join(root, 'next'), versionCheckpoint(3));
      await cp(join(root, 'next'), join(dir, '.qf-commit'), { recursive: true });
      expect(await loadVersion(dir)).toBe(3);
      await recoverCheckpointDir(dir);
      expect((await readdir(dir)).sort()).toEqual(['config.json', 'model.safetensors']);
      expect(await loadVersion(dir)).toBe(3);
    });
  });

  it('a crash before the commit point: the previous version stays, the next write removes the leftovers', async () => {
    await withTempDir(async (dir) => {
      await writeCheckpointDir(dir, versionCheckpoint(2)); // 6 shards
      await mkdir(join(dir, '.qf-staging-123-abc'));
      await writeFile(join(dir, '.qf-staging-123-abc', 'model.safetensors'), 'half a file');
      await writeFile(join(dir, '.qf-place-123-abc'), 'a link being placed');
      expect(await loadVersion(dir)).toBe(2);
      await writeCheckpointDir(dir, versionCheckpoint(4)); // 3 shards: the 6 older shards go
      const files = (await readdir(dir)).sort();
      expect(files.filter((f) => f.startsWith('.'))).toEqual([]);
      expect(files.filter((f) => f.endsWith('-of-00006.safetensors'))).toEqual([]);
      expect(files.length).toBe(2 + 3);
      expect(await loadVersion(dir)).toBe(4);
    });
  });
});
