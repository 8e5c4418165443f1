import {
  type Backend,
  type Ops,
  type ParamSpec,
  type ParamStore,
  type TrainingBackend,
  initParams,
  visionGraph,
  visionGraphKey,
  visionParamSpecs,
  visionTower,
} from '@qf/core';
import type { HostTensor, VisionConfig } from '@qf/io';
import { crossEntropyFromTargets, prepareCrossEntropyTargets } from '@qf/losses';
import { PATCH_SLOTS, SLOTS, SLOT_WIDTH, slotMask } from './aux.js';
import { type SplitTensors, gatherRows } from './data.js';
import { Batcher, type PhaseRun, trainPhase } from './loop.js';
import type { DemoReporter } from './report.js';

/** Names of the auxiliary heads (trained with the encoder, not part of the checkpoint). */
export const AUX_HEAD = { weight: 'aux_head.weight', bias: 'aux_head.bias' } as const;
export const AUX_PATCH_HEAD = { weight: 'aux_patch_head.weight', bias: 'aux_patch_head.bias' } as const;

/** Options of the encoder pre-training phase. */
export interface EncoderTrainOptions {
  readonly steps: number;
  readonly batch: number;
  readonly lr: number;
  readonly seed: number;
  /** Weight of the dense (per-patch) loss; 0 trains the global head alone. Default 1. */
  readonly denseWeight?: number;
}

/** Vision tower + auxiliary head parameter specs. */
export function encoderParamSpecs(cfg: VisionConfig): ParamSpec[] {
  return [
    ...visionParamSpecs(cfg),
    { name: AUX_HEAD.weight, shape: [SLOTS.length * SLOT_WIDTH, cfg.hiddenSize], kind: 'linear.weight' },
    { name: AUX_HEAD.bias, shape: [SLOTS.length * SLOT_WIDTH], kind: 'bias' },
    { name: AUX_PATCH_HEAD.weight, shape: [PATCH_SLOTS.length * SLOT_WIDTH, cfg.hiddenSize], kind: 'linear.weight' },
    { name: AUX_PATCH_HEAD.bias, shape: [PATCH_SLOTS.length * SLOT_WIDTH], kind: 'bias' },
  ];
}

/**
 * Logits of both heads from the tower's last hidden state: global [B * SLOTS, WIDTH] from the class
 * token, dense [B * patches * PATCH_SLOTS, WIDTH] from the patch tokens.
 */
function auxLogits<T>(ops: Ops<T>, cfg: VisionConfig, params: ParamStore<T>, pixels: T): { global: T; dense: T } {
  const h = visionTower(ops, cfg, params, pixels).lastHiddenState; // [B, 1 + P, D]
  const cls = ops.reshape(ops.slice(h, 1, 0, 1), [0, -1]); // [B, D]
  const g = ops.linear(cls, params.get(AUX_HEAD.weight), params.get(AUX_HEAD.bias));
  const global = ops.add(
    ops.reshape(g, [0, SLOTS.length, SLOT_WIDTH]),
    ops.constant(slotMask(SLOTS), [SLOTS.length, SLOT_WIDTH]),
  );
  const d = ops.linear(ops.slice(h, 1, 1), params.get(AUX_PATCH_HEAD.weight), params.get(AUX_PATCH_HEAD.bias));
  const dense = ops.add(
    ops.reshape(d, [-1, PATCH_SLOTS.length, SLOT_WIDTH]),
    ops.constant(slotMask(PATCH_SLOTS), [PATCH_SLOTS.length, SLOT_WIDTH]),
  );
  return { global: ops.reshape(global, [-1, SLOT_WIDTH]), dense: ops.reshape(dense, [-1, SLOT_WIDTH]) };
}


/**
 * Seeded init of the tower and the heads: fan-in scaled weights (`stress` scheme: N(0, 1/fan_in)),
 * which trains this small ViT much faster from scratch than HF's N(0, 0.02).
 */
export function initEncoder(cfg: VisionConfig, seed: number, scheme: 'hf' | 'stress' = 'stress'): Map<string, HostTensor> {
  return initParams(encoderParamSpecs(cfg), { seed, scheme, initializerRange: 0.02 });
}

/**
 * Pre-trains the vision tower on the auxiliary objective (cross-entropy of each slot of the scene
 * description, predicted from the class token by a linear head), then leaves it to be frozen.
 */
export async function pretrainEncoder<T>(
  backend: TrainingBackend<T>,
  cfg: VisionConfig,
  params: ParamStore<T>,
  train: SplitTensors,
  o: EncoderTrainOptions,
  reporter: DemoReporter,
): Promise<PhaseRun> {
  const specs = encoderParamSpecs(cfg);
  const batcher = new Batcher(train.examples.length, o.batch, o.seed);
  const s = cfg.imageSize;
  const px = 3 * s * s;
  const patchWidth = train.patches.length / train.examples.length;
  const phase = reporter.phase('image encoder', o.steps, 'steps');
  const run = await trainPhase(
    backend,
    params,
    {
      steps: o.steps,
      lr: o.lr,
      warmup: Math.max(1, Math.round(o.steps * 0.05)),
      weightDecay: 0.05,
      trainable: specs.map((p) => p.name),
      shapes: new Map(specs.map((p) => [p.name, p.shape])),
      loss: (ops, p, inputs) => {
        const logits = auxLogits(ops, cfg, p, inputs['pixel_values'] as T);
        const global = crossEntropyFromTargets(ops, logits.global, {
          index: inputs['global_index'] as T,
          weight: inputs['global_weight'] as T,
        });
        const dense = crossEntropyFromTargets(ops, logits.dense, {
          index: inputs['dense_index'] as T,
          weight: inputs['dense_weight'] as T,
        });
        return { loss: ops.add(global, ops.mul(dense, ops.scalar(o.denseWeight ?? 1))) };
      },
      batch: () => {
        const idx = batcher.next();
        const g = prepareCrossEntropyTargets(gatherRows(train.slots, SLOTS.length, idx), SLOT_WIDTH);
        const d = prepareCrossEntropyTargets(gatherRows(train.patches, patchWidth, idx), SLOT_WIDTH);
        return {
          pixel_values: { dtype: 'F32', shape: [idx.length, 3, s, s], data: gatherRows(train.pixels.data, px, idx) },
          global_index: g.index,
          global_weight: g.weight,
          dense_index: d.index,
          dense_weight: d.weight,
        };
      },
    },
    phase,
  );
  phase.end();
  return run;
}

/** Per-slot accuracy and whole-description accuracy of the auxiliary head on a split. */
export async function encoderAccuracy<T>(
  backend: Backend<T>,
  cfg: VisionConfig,
  params: ParamStore<T>,
  split: SplitTensors,
  batch = 200,
): Promise<{ slots: Record<string, number>; all: number }> {
  const n = split.examples.length;
  const s = cfg.imageSize;
  const px = 3 * s * s;
  const hits = new Array<number>(SLOTS.length).fill(0);
  const counts = new Array<number>(SLOTS.length).fill(0);
  let allRight = 0;
  for (let start = 0; start < n; start += batch) {
    const rows = Int32Array.from({ length: Math.min(batch, n - start) }, (_, i) => start + i);
    const out = await backend.run('demo:aux-logits', (ops, inputs) => ({ logits: auxLogits(ops, cfg, params, inputs['pixel_values'] as T).global }), {
      pixel_values: { dtype: 'F32', shape: [rows.length, 3, s, s], data: gatherRows(split.pixels.data, px, rows) },
    });
    const logits = out.logits.data as Float32Array;
    rows.forEach((r, b) => {
      let ok = true;
      SLOTS.forEach((_, k) => {
        const y = split.slots[r * SLOTS.length + k] as number;
        if (y < 0) return;
        const row = (b * SLOTS.length + k) * SLOT_WIDTH;
        let best = 0;
        for (let c = 1; c < SLOT_WIDTH; c++) if ((logits[row + c] as number) > (logits[row + best] as number)) best = c;
        counts[k] = (counts[k] as number) + 1;
        if (best === y) hits[k] = (hits[k] as number) + 1;
        else ok = false;
      });
      if (ok) allRight++;
    });
  }
  const slots: Record<string, number> = {};
  SLOTS.forEach((sl, k) => {
    slots[sl.name] = (hits[k] as number) / Math.max(1, counts[k] as number);
  });
  return { slots, all: allRight / n };
}

/**
 * The frozen encoder's output (`vision_output`, the Q-Former's image_embeds) for every example of a
 * split, computed once and reused by every later phase: [N, tokens, D] F32.
 */
export async function encodeImages<T>(
  backend: Backend<T>,
  cfg: VisionConfig,
  params: ParamStore<T>,
  split: SplitTensors,
  batch = 250,
): Promise<HostTensor<'F32'>> {
  const n = split.examples.length;
  const s = cfg.imageSize;
  const px = 3 * s * s;
  const parts: Float32Array[] = [];
  let tokens = 0;
  for (let start = 0; start < n; start += batch) {
    const rows = Int32Array.from({ length: Math.min(batch, n - start) }, (_, i) => start + i);
    const out = await backend.run(visionGraphKey(), visionGraph(cfg, params), {
      pixel_values: { dtype: 'F32', shape: [rows.length, 3, s, s], data: gatherRows(split.pixels.data, px, rows) },
    });
    tokens = out.vision_output.shape[1] as number;
    parts.push(out.vision_output.data as Float32Array);
  }
  const data = new Float32Array(n * tokens * cfg.hiddenSize);
  let off = 0;
  for (const p of parts) {
    data.set(p, off);
    off += p.length;
  }
  return { dtype: 'F32', shape: [n, tokens, cfg.hiddenSize], data };
}
