/**
 * Crash safety of training checkpoints: a child process (`fixtures/crash-train-child.ts`) resumes
 * from `latestCheckpoint`, trains stage 1 with `checkpointer(..., { every: 1, keepLast: 2 })` (a
 * save and a prune after every step) and is SIGKILLed at a random moment inside or just after one of
 * its first three saves; then the next child resumes, and so on. After every kill:
 *
 * - the run directory holds only `checkpoint-<step>` directories and hidden leftovers of the
 *   interrupted save or prune (names `latestCheckpoint` never picks);
 * - every `checkpoint-<step>` directory there is complete and equals the uninterrupted run after
 *   <step> steps, bit for bit (parameters, AdamW moments, trainer state);
 * - `latestCheckpoint` returns the checkpoint of the last save the child reported finished, or that
 *   of the save it was in when killed (whose commit rename may have happened before the kill) —
 *   nothing older, nothing else; `openCheckpointDir` opens it and `resumeTraining` restores it into a
 *   fresh trainer whose state is that of the uninterrupted run at that step.
 *
 * At the end the parent resumes from the last checkpoint and trains to the end: the result is bit
 * identical to the uninterrupted run (computed once here, on the same backend).
 *
 * Kills: `QF_TRAIN_CRASH_RUNS` (default 12; the run has 3 x kills + 8 steps). The kill moments come
 * from `QF_TRAIN_CRASH_SEED` (logged; the exact moment still depends on timing). Children run the
 * TypeScript sources through tsx, as in `resume.test.ts`.
 */
import { spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type TfjsBackend, createTfjsBackend } from '@qf/backends/tfjs';
import { type HostTensor, parseModelConfig } from '@qf/io';
import { openCheckpointDir } from '@qf/io/node';
import { describe, expect, it } from 'vitest';
import type { TrainerSnapshot } from '../src/index.js';
import { checkpointer, latestCheckpoint, loadTrainingCheckpoint, resumeTraining } from '../src/node.js';
import { CRASH_KEEP_LAST, crashRun } from './fixtures/crash-run.js';
import { CONFIG } from './fixtures/tiny.js';
import { killRng as rng, tsxLoaderUrl } from '../../../test-utils/crash.js';

const KILLS = Math.max(1, Math.floor(Number(process.env.QF_TRAIN_CRASH_RUNS ?? 12)) || 12);
const SEED = Math.floor(Number(process.env.QF_TRAIN_CRASH_SEED ?? 20_250_611)) || 1;
/** At most 3 saves per child, so the children never reach the end; the parent trains the rest. */
const TOTAL = 3 * KILLS + 8;

const pkgDir = fileURLToPath(new URL('../', import.meta.url));
const child = fileURLToPath(new URL('./fixtures/crash-train-child.ts', import.meta.url));
const tsx = tsxLoaderUrl(pkgDir);

interface ChildRun {
  /** Step the child resumed from (`ready <step>`). */
  ready: number;
  /** Last step whose save it began (`begin`), and finished (`saved`, after pruning); -1: none. */
  begun: number;
  saved: number;
  finished: boolean;
  stderr: string;
}

/** Observed save durations (ms, `begin` to `saved` as the parent sees them), for the kill window. */
const saveMs: number[] = [];

/**
 * Starts a child; after its `nthBegin`-th `begin` line, waits `fraction` of the kill window and
 * SIGKILLs it. The window is the median save duration seen so far (40 ms before the first), so most
 * kills land inside a save whatever the machine's speed (the rest, through scheduling latency, just
 * after it).
 */
function runAndKill(outDir: string, nthBegin: number, fraction: number): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', tsx, child, outDir, String(TOTAL)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, TSX_TSCONFIG_PATH: join(pkgDir, 'tsconfig.json') },
    });
    const run: ChildRun = { ready: -1, begun: -1, saved: -1, finished: false, stderr: '' };
    let pending = '';
    let begins = 0;
    let begunAt = 0;
    let timer: NodeJS.Timeout | undefined;
    const kill = () => proc.kill('SIGKILL');
    const guard = setTimeout(kill, 60_000);
    proc.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        const m = /^(ready|begin|saved) (\d+)$/.exec(line);
        if (m?.[1] === 'ready') run.ready = Number(m[2]);
        if (m?.[1] === 'begin') {
          run.begun = Number(m[2]);
          begunAt = performance.now();
          if (++begins === nthBegin && timer === undefined) {
            const sorted = [...saveMs].sort((a, b) => a - b);
            const window = sorted.length ? (sorted[sorted.length >> 1] as number) : 40;
            timer = setTimeout(kill, fraction * Math.max(window, 5));
          }
        }
        if (m?.[1] === 'saved') {
          run.saved = Number(m[2]);
          saveMs.push(performance.now() - begunAt);
        }
        if (line === 'finished') {
          run.finished = true;
          kill();
        }
      }
    });
    proc.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      run.stderr += chunk;
    });
    proc.on('error', reject);
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(guard);
      if (signal === 'SIGKILL' && run.ready >= 0) resolve(run);
      else reject(new Error(`child ended on its own (code ${code}, signal ${signal}):\n${run.stderr}`));
    });
  });
}

const bytes = (t: HostTensor) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);

/** Where two trainer states differ (empty when parameters, moments and state JSON are identical). */
function stateDiff(got: TrainerSnapshot, want: TrainerSnapshot): string[] {
  const out: string[] = [];
  if (JSON.stringify(got.json) !== JSON.stringify(want.json)) out.push('trainer_state.json');
  const maps = [
    ['param', got.params, want.params],
    ['exp_avg', got.optimizer.expAvg, want.optimizer.expAvg],
    ['exp_avg_sq', got.optimizer.expAvgSq, want.optimizer.expAvgSq],
  ] as const;
  for (const [kind, g, w] of maps) {
    if (g.size !== w.size) out.push(`${kind}: ${g.size} tensors, want ${w.size}`);
    for (const [name, t] of w) {
      const h = g.get(name);
      if (!h || !bytes(h).equals(bytes(t))) out.push(`${kind} ${name}`);
    }
  }
  return out;
}

const VISIBLE = /^checkpoint-(\d{6})$/;
/** Leftovers of an interrupted save (temp copy) or prune (`checkpointer` renames before deleting). */
const LEFTOVER = /^\.checkpoint-(\d{6})\.qf-(tmp|pruned)-\d+-[0-9a-f]{12}$/;

describe('crash safety of training checkpoints', () => {
  it(
    `SIGKILL during per-step checkpointing (${KILLS} kills): latest checkpoint intact, resume bit-exact`,
    async () => {
      console.log(`crash-resume: QF_TRAIN_CRASH_SEED=${SEED} QF_TRAIN_CRASH_RUNS=${KILLS}`);
      const backend: TfjsBackend = await createTfjsBackend('cpu');
      // the uninterrupted run, state after every step
      const reference: TrainerSnapshot[] = [];
      const straight = crashRun(backend, TOTAL);
      reference.push(await straight.snapshot());
      while (straight.step < TOTAL) {
        await straight.trainStep();
        reference.push(await straight.snapshot());
      }
      straight.dispose();
      backend.disposeParams(straight.params);

      const outDir = await mkdtemp(join(tmpdir(), 'qf-train-crash-'));
      const next = rng(SEED);
      let latest = 0; // step of latestCheckpoint(outDir), 0: none
      let interrupted = 0;
      let committedUnreported = 0;
      const leftovers = { tmp: 0, pruned: 0 };
      const log: string[] = [];
      try {
        for (let k = 0; k < KILLS; k++) {
          const nth = 1 + Math.floor(next() * 3);
          const fraction = next();
          const run = await runAndKill(outDir, nth, fraction);
          const what = `seed ${SEED}, kill ${k} (after begin #${nth}, ${fraction.toFixed(3)} of the window): ready ${run.ready}, begun ${run.begun}, saved ${run.saved}`;
          log.push(what);
          expect(run.finished, what).toBe(false);
          expect(run.ready, `${what}: resumed from the latest checkpoint`).toBe(latest);

          // what is on disk, before anything here touches it
          const entries = await readdir(outDir);
          const visible = entries.filter((e) => VISIBLE.test(e)).sort();
          const hidden = entries.filter((e) => !VISIBLE.test(e));
          const lastDone = Math.max(run.ready, run.saved);
          const inSave = run.begun > lastDone;
          for (const e of hidden) {
            const m = LEFTOVER.exec(e);
            expect(m, `${what}: unexpected entry ${e}`).not.toBeNull();
            if (m) leftovers[m[2] as 'tmp' | 'pruned']++;
            // a temp copy can only be of the save that was interrupted
            if (m?.[2] === 'tmp') expect(inSave && Number(m[1]) === run.begun, `${what}: ${e}`).toBe(true);
          }

          // the latest checkpoint: the last reported save, or the one under way at the kill
          const dir = await latestCheckpoint(outDir);
          const step = dir === undefined ? 0 : Number(VISIBLE.exec(dir.slice(outDir.length + 1))?.[1]);
          if (inSave) {
            interrupted++;
            expect([lastDone, run.begun], what).toContain(step);
            if (step === run.begun) committedUnreported++;
          } else expect(step, what).toBe(lastDone);
          log[log.length - 1] += ` -> latest ${step}`;

          // every checkpoint directory is complete and equals the uninterrupted run at its step
          expect(visible.length, `${what}: ${visible.join(' ')}`).toBeLessThanOrEqual(CRASH_KEEP_LAST + 1);
          if (step > 0) expect(visible.at(-1), what).toBe(`checkpoint-${String(step).padStart(6, '0')}`);
          else expect(visible, what).toEqual([]);
          for (const v of visible) {
            const s = Number(VISIBLE.exec(v)?.[1]);
            const diff = await loadTrainingCheckpoint(join(outDir, v)).then(
              (loaded) => stateDiff(loaded, reference[s] as TrainerSnapshot),
              (err: Error) => [err.message],
            );
            expect(diff, `${what}: ${v}`).toEqual([]);
          }

          if (dir !== undefined) {
            const opened = await openCheckpointDir(dir);
            expect(parseModelConfig(opened.config).modelType).toBe('blip-2');
            expect(opened.checkpoint.names()).toContain('temp');
            await opened.checkpoint.close();
            const resumed = crashRun(backend, TOTAL);
            expect(await resumeTraining(dir, resumed), what).toBe(step);
            expect(stateDiff(await resumed.snapshot(), reference[step] as TrainerSnapshot), what).toEqual([]);
            resumed.dispose();
            backend.disposeParams(resumed.params);
          }
          latest = step;
        }
        console.log(
          `crash-resume: ${KILLS} kills, ${interrupted} inside a save (${committedUnreported} after its commit rename), leftovers seen: ${leftovers.tmp} temp, ${leftovers.pruned} half-pruned; last checkpoint at step ${latest} of ${TOTAL}`,
        );
        if (process.env.QF_TRAIN_CRASH_DEBUG) console.log(log.join('\n'));
        // the kills must hit saves, and the children must have made progress, for this to mean anything
        // (about half to three quarters of the kills land inside a save, depending on the load)
        expect(interrupted, log.join('\n')).toBeGreaterThanOrEqual(Math.max(2, Math.ceil(KILLS / 6)));
        expect(latest).toBeGreaterThan(0);

        // resume from the last checkpoint and finish: bit-identical to the uninterrupted run
        const dir = (await latestCheckpoint(outDir)) as string;
        const last = crashRun(backend, TOTAL);
        expect(await resumeTraining(dir, last)).toBe(latest);
        const summary = await last.train();
        expect(summary.stepsRun).toBe(TOTAL - latest);
        expect(stateDiff(await last.snapshot(), reference[TOTAL] as TrainerSnapshot)).toEqual([]);
        last.dispose();
        backend.disposeParams(last.params);
      } finally {
        await rm(outDir, { recursive: true, force: true });
      }
    },
    60_000 + KILLS * 8_000,
  );

  it('leftovers of a save and a prune cut short: ignored by latestCheckpoint, removed by the next saves', async () => {
    const backend: TfjsBackend = await createTfjsBackend('cpu');
    const outDir = await mkdtemp(join(tmpdir(), 'qf-train-leftovers-'));
    const ck = () => checkpointer(outDir, { every: 1, config: CONFIG, keepLast: 2 });
    try {
      expect(() => checkpointer(outDir, { every: 1, config: CONFIG, keepLast: 0 })).toThrow(
        expect.objectContaining({ code: 'TRAIN_OPTIONS' }),
      );
      const first = crashRun(backend, 6, { checkpoint: ck() });
      await first.train({ until: 3 });
      expect((await readdir(outDir)).sort()).toEqual(['checkpoint-000002', 'checkpoint-000003']);
      // as a SIGKILL leaves them: checkpoint 2 renamed aside and half deleted while pruning, and a temp
      // copy of step 4 without its trainer state
      const pruned = join(outDir, '.checkpoint-000002.qf-pruned-1-0123456789ab');
      await cp(join(outDir, 'checkpoint-000002'), pruned, { recursive: true });
      await rm(join(outDir, 'checkpoint-000002'), { recursive: true });
      await rm(join(pruned, 'trainer_state.json'));
      const tmp = join(outDir, '.checkpoint-000004.qf-tmp-1-0123456789ab');
      await mkdir(tmp);
      await writeFile(join(tmp, 'config.json'), '{}');
      expect(await latestCheckpoint(outDir)).toBe(join(outDir, 'checkpoint-000003'));

      const second = crashRun(backend, 6, { checkpoint: ck() });
      expect(await resumeTraining(join(outDir, 'checkpoint-000003'), second)).toBe(3);
      await second.train({ until: 4 }); // saves step 4 (its temp copy goes) and prunes (the old copy goes)
      expect((await readdir(outDir)).sort()).toEqual(['checkpoint-000003', 'checkpoint-000004']);
      expect((await loadTrainingCheckpoint(join(outDir, 'checkpoint-000004'))).json.step).toBe(4);
      for (const t of [first, second]) {
        t.dispose();
        backend.disposeParams(t.params);
      }
    } finally {
      await rm(outDir, { recursive: true, force: true });
    }
  });
});
