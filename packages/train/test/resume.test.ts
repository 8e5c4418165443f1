/**
 * Exact resume: N steps straight must equal k steps in a child process that is SIGKILLed after
 * saving its step-k checkpoint, then a fresh trainer resumed from that checkpoint for N - k steps:
 * identical parameters, AdamW moments and per-step losses, bit for bit, on tfjs-cpu and tfjs-wasm.
 * The child runs the TypeScript sources through tsx, resolving `@qf/*` with this package's tsconfig
 * (the approach of `packages/io/test/crash-safety.test.ts`).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createTfjsBackend } from '@qf/backends/tfjs';
import { parseModelConfig } from '@qf/io';
import { openCheckpointDir } from '@qf/io/node';
import { loadStage1Tensors } from '@qf/losses';
import { describe, expect, it } from 'vitest';
import { type StepMetrics, TrainError } from '../src/index.js';
import { TRAINER_STATE_JSON, loadTrainingCheckpoint, resumeTraining } from '../src/node.js';
import { bytesOf } from './fixtures/tiny.js';
import { SAVE_AT, TOTAL, resumeRun } from './fixtures/resume-run.js';

const pkgDir = fileURLToPath(new URL('../', import.meta.url));
const child = fileURLToPath(new URL('./fixtures/train-child.ts', import.meta.url));
const tsx = pathToFileURL(createRequire(join(pkgDir, 'package.json')).resolve('tsx')).href;

/** Runs the child until it prints `saved <SAVE_AT>`, then SIGKILLs it. */
function trainAndKill(backend: string, outDir: string): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', tsx, child, backend, outDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, TSX_TSCONFIG_PATH: join(pkgDir, 'tsconfig.json') },
    });
    let stdout = '';
    let stderr = '';
    let killed = false;
    const guard = setTimeout(() => proc.kill('SIGKILL'), 90_000);
    proc.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      if (!killed && stdout.split('\n').includes(`saved ${SAVE_AT}`)) {
        killed = true;
        proc.kill('SIGKILL');
      }
    });
    proc.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    proc.on('error', reject);
    proc.on('close', (code, signal) => {
      clearTimeout(guard);
      if (signal === 'SIGKILL' && killed) resolve({ stdout, stderr });
      else
        reject(
          new Error(`child ended without being killed after saving (code ${code}, ${signal}):\n${stderr}`),
        );
    });
  });
}

for (const name of ['cpu', 'wasm'] as const) {
  describe(`exact resume on tfjs-${name}`, () => {
    it(`${TOTAL} steps straight == ${SAVE_AT} steps, SIGKILL, resume, ${TOTAL - SAVE_AT} steps (bit-exact)`, async () => {
      const outDir = await mkdtemp(join(tmpdir(), `qf-train-resume-${name}-`));
      try {
        const backend = await createTfjsBackend(name);
        const straightSteps: StepMetrics[] = [];
        const straight = resumeRun(backend, { reporters: [{ step: (m) => straightSteps.push(m) }] });
        await straight.train();
        const want = await straight.snapshot();
        straight.dispose();
        backend.disposeParams(straight.params);

        const { stdout } = await trainAndKill(name, outDir);
        expect(stdout).toContain(`saved ${SAVE_AT}`);
        const dir = join(outDir, `checkpoint-${String(SAVE_AT).padStart(6, '0')}`);

        // the checkpoint is an HF model directory plus the trainer state
        const files = (await readdir(dir)).sort();
        expect(files).toEqual([
          'config.json',
          'model.safetensors',
          'trainer_state.json',
          'trainer_state.safetensors',
        ]);
        const opened = await openCheckpointDir(dir);
        expect(parseModelConfig(opened.config).modelType).toBe('blip-2');
        const names = opened.checkpoint.names();
        expect(names).toContain('temp');
        expect(names).toContain('Qformer.cls.predictions.decoder.weight'); // tied copy for LAVIS
        expect(names).toContain('qformer.encoder.layer.0.crossattention.attention.key.weight');
        expect(names).toContain('vision_model.post_layernorm.weight'); // frozen parts too
        const loaded = await loadStage1Tensors(opened.checkpoint, opened.config);
        await opened.checkpoint.close();
        expect(loaded.spec.textPath).toBe(true);
        const state = JSON.parse(await readFile(join(dir, TRAINER_STATE_JSON), 'utf8'));
        expect(state.step).toBe(SAVE_AT);
        expect(state.data).toEqual({ kind: name === 'wasm' ? 'iterable' : 'function', consumed: SAVE_AT });
        const log = (await readFile(join(outDir, 'metrics.jsonl'), 'utf8'))
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l));
        const logged = log.filter((r) => r.type === 'step');
        expect(logged.length).toBeGreaterThanOrEqual(SAVE_AT);
        for (const r of logged) expect(r.loss).toBe(straightSteps[r.step - 1]?.loss); // across processes

        const resumedSteps: StepMetrics[] = [];
        const resumed = resumeRun(backend, { reporters: [{ step: (m) => resumedSteps.push(m) }] });
        expect(await resumeTraining(dir, resumed)).toBe(SAVE_AT);
        expect(resumed.step).toBe(SAVE_AT);
        const summary = await resumed.train();
        expect(summary.stepsRun).toBe(TOTAL - SAVE_AT);
        const got = await resumed.snapshot();
        for (const [n, t] of want.params) expect(bytesOf(got.params.get(n)!), n).toEqual(bytesOf(t));
        for (const n of want.json.trainable) {
          expect(bytesOf(got.optimizer.expAvg.get(n)!), n).toEqual(bytesOf(want.optimizer.expAvg.get(n)!));
          expect(bytesOf(got.optimizer.expAvgSq.get(n)!), n).toEqual(
            bytesOf(want.optimizer.expAvgSq.get(n)!),
          );
        }
        expect(got.json).toEqual(want.json);
        expect(resumedSteps.map((m) => [m.step, m.loss, m.lr, m.gradNorm])).toEqual(
          straightSteps.slice(SAVE_AT).map((m) => [m.step, m.loss, m.lr, m.gradNorm]),
        );

        // a trainer that differs from the checkpoint is refused before anything changes
        const other = resumeRun(backend, { trainable: ['temp'] });
        await expect(resumeTraining(dir, other)).rejects.toMatchObject({ code: 'TRAIN_STATE' });
        other.dispose();
        backend.disposeParams(other.params);
        const snapshot = await loadTrainingCheckpoint(dir);
        const changed = new Map(snapshot.params);
        const frozen = changed.get('vision_model.post_layernorm.bias')!;
        changed.set('vision_model.post_layernorm.bias', {
          ...frozen,
          data: (frozen.data as Float32Array).map((x) => x + 1),
        });
        const third = resumeRun(backend);
        await expect(third.restore({ ...snapshot, params: changed })).rejects.toBeInstanceOf(TrainError);
        third.dispose();
        backend.disposeParams(third.params);
        resumed.dispose();
        backend.disposeParams(resumed.params);
      } finally {
        await rm(outDir, { recursive: true, force: true });
      }
    });
  });
}
