import { mkdir, mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { createTfjsBackend } from '@qf/backends/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as tf from '@tensorflow/tfjs-core';
import { Stage1Trainer, type Stage1TrainerOptions, constantLr } from '../src/index.js';
import {
  checkpointer,
  jsonlReporter,
  latestCheckpoint,
  loadTrainingCheckpoint,
  progressReporter,
  recoverTrainingCheckpoint,
  resumeTraining,
  saveTrainingCheckpoint,
} from '../src/node.js';
import { CONFIG, SPEC, TEXT, stage1Batch, stage1Tensors } from './fixtures/tiny.js';

type Backend = Awaited<ReturnType<typeof createTfjsBackend>>;
let backend: Backend;
let root: string;
beforeAll(async () => {
  backend = await createTfjsBackend('cpu');
  root = await mkdtemp(join(tmpdir(), 'qf-train-ckpt-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function trainer(extra: Partial<Stage1TrainerOptions<tf.Tensor>> = {}): Stage1Trainer<tf.Tensor> {
  return new Stage1Trainer<tf.Tensor>(backend, {
    spec: SPEC,
    params: backend.createParams(stage1Tensors(51)),
    text: TEXT,
    data: (s) => stage1Batch(s, 3),
    totalSteps: 4,
    schedule: constantLr(1e-3),
    ...extra,
  });
}

describe('training checkpoints', () => {
  it('replaces a checkpoint atomically and recovers the window between the two renames', async () => {
    const dir = join(root, 'ck');
    const t = trainer();
    await t.trainStep();
    await saveTrainingCheckpoint(dir, { trainer: t, config: CONFIG });
    await t.trainStep();
    await saveTrainingCheckpoint(dir, { trainer: t, config: CONFIG, include: 'trainable' });
    expect((await loadTrainingCheckpoint(dir)).json.step).toBe(2);
    const snap = await loadTrainingCheckpoint(dir);
    expect(snap.params.has('vision_model.post_layernorm.weight')).toBe(false); // include: trainable
    // no temp or moved-aside copies left next to it
    expect((await readdir(root)).filter((e) => e.startsWith('.'))).toEqual([]);

    // crash after "dir -> old" but before "tmp -> dir": recovery takes the finished new version
    await t.trainStep();
    const aside = join(root, '.ck.qf-old-1-aa');
    const fresh = join(root, 'fresh');
    await saveTrainingCheckpoint(fresh, { trainer: t, config: CONFIG });
    await rename(dir, aside);
    await rename(fresh, join(root, '.ck.qf-tmp-1-bb'));
    await recoverTrainingCheckpoint(dir);
    expect((await loadTrainingCheckpoint(dir)).json.step).toBe(3);
    expect((await readdir(root)).filter((e) => e.startsWith('.'))).toEqual([]);
    // ...and the old version when the new one never finished
    await rename(dir, aside);
    await mkdir(join(root, '.ck.qf-tmp-1-cc'));
    await recoverTrainingCheckpoint(dir);
    expect((await loadTrainingCheckpoint(dir)).json.step).toBe(3);
    expect((await readdir(root)).filter((e) => e.startsWith('.'))).toEqual([]);
    t.dispose();
    backend.disposeParams(t.params);
  });

  it('checkpointer: checkpoint-<step> dirs, keepLast, latestCheckpoint; resume restores the step', async () => {
    const out = join(root, 'run');
    const t = trainer({ checkpoint: checkpointer(out, { every: 1, config: CONFIG, keepLast: 2 }) });
    await t.train();
    expect((await readdir(out)).sort()).toEqual(['checkpoint-000003', 'checkpoint-000004']);
    const latest = await latestCheckpoint(out);
    expect(latest).toBe(join(out, 'checkpoint-000004'));
    const u = trainer();
    expect(await resumeTraining(latest as string, u)).toBe(4);
    expect(u.step).toBe(4);
    expect(await latestCheckpoint(join(root, 'none'))).toBeUndefined();
    for (const x of [t, u]) {
      x.dispose();
      backend.disposeParams(x.params);
    }
  });

  it('typed errors for missing or foreign checkpoints', async () => {
    const u = trainer();
    await expect(resumeTraining(join(root, 'missing'), u)).rejects.toMatchObject({
      code: 'TRAIN_CHECKPOINT',
    });
    const bad = join(root, 'bad');
    await mkdir(bad, { recursive: true });
    await writeFile(join(bad, 'trainer_state.json'), '{"format":"other"}');
    await expect(resumeTraining(bad, u)).rejects.toMatchObject({ code: 'TRAIN_CHECKPOINT' });
    u.dispose();
    backend.disposeParams(u.params);
  });
});

describe('reporters', () => {
  it('JSONL: one object per step and eval; progress lines when not a TTY', async () => {
    const path = join(root, 'logs', 'm.jsonl');
    const stream = new PassThrough() as unknown as NodeJS.WriteStream;
    let text = '';
    (stream as unknown as PassThrough).setEncoding('utf8').on('data', (c: string) => {
      text += c;
    });
    const t = trainer({
      reporters: [jsonlReporter(path, { append: false }), progressReporter({ stream, every: 2 })],
      evaluate: { every: 2, run: async (step) => ({ recall: step / 10 }) },
    });
    await t.train();
    const records = (await readFile(path, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(records.map((r) => r.type)).toEqual([
      'start',
      'step',
      'step',
      'eval',
      'step',
      'step',
      'eval',
      'end',
    ]);
    expect(records[1]).toMatchObject({ type: 'step', step: 1, totalSteps: 4, lr: 1e-3 });
    expect(Object.keys(records[1].parts).sort()).toEqual(['loss_itc', 'loss_itm', 'loss_lm']);
    expect(records[3]).toEqual({ type: 'eval', step: 2, metrics: { recall: 0.2 } });
    const lines = text.trim().split('\n');
    expect(lines[0]).toBe('stage1: steps 1..4');
    expect(
      lines.filter((l) =>
        /^\d\/4 loss [\d.]+ \(itc [\d.]+ itm [\d.]+ lm [\d.]+\) lr 1\.00e-3 [\d.]+ steps\/s ETA \d+ s$/.test(
          l,
        ),
      ).length,
    ).toBe(3); // steps 1, 2, 4
    expect(text).toContain('eval @2: recall 0.2000');
    t.dispose();
    backend.disposeParams(t.params);
  });
});
