import {
  type Backend,
  type LossFn,
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
import type { DemoSizes } from './config.js';
import { Batcher, type PhaseRun, trainPhase } from './loop.js';
import type { DemoBackendName } from './options.js';
import { GradWorker, dataParallelGrads } from './parallel.js';
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
  /** Called after each step (e.g. to evaluate on validation). */
  readonly after?: (step: number) => Promise<void>;
  /** 2: split each batch between this thread and a worker thread (default 1). */
  readonly workers?: number;
  /** The backend and model sizes the worker thread rebuilds (needed with `workers` 2). */
  readonly backendName?: DemoBackendName;
  readonly sizes?: DemoSizes;
}

/** Vision tower + auxiliary head parameter specs. */
export function encoderParamSpecs(cfg: VisionConfig): ParamSpec[] {
  return [
    ...visionParamSpecs(cfg),
    { name: AUX_HEAD.weight, shape: [SLOTS.length * SLOT_WIDTH, cfg.hiddenSize], kind: 'linear.weight' },
    { name: AUX_HEAD.bias, shape: [SLOTS.length * SLOT_WIDTH], kind: 'bias' },
    {
      name: AUX_PATCH_HEAD.weight,
      shape: [PATCH_SLOTS.length * SLOT_WIDTH, cfg.hiddenSize],
      kind: 'linear.weight',
    },
    { name: AUX_PATCH_HEAD.bias, shape: [PATCH_SLOTS.length * SLOT_WIDTH], kind: 'bias' },
  ];
}

/**
 * Logits of both heads from the tower's last hidden state: global [B * SLOTS, WIDTH] from the class
 * token, dense [B * patches * PATCH_SLOTS, WIDTH] from the patch tokens.
 */
function auxLogits<T>(
  ops: Ops<T>,
  cfg: VisionConfig,
  params: ParamStore<T>,
  pixels: T,
): { global: T; dense: T } {
  const h = visionTower(ops, cfg, params, pixels).lastHiddenState; // [B, 1 + P, D]
  const cls = ops.reshape(ops.slice(h, 1, 0, 1), [0, -1]); // [B, D]
  const g = ops.linear(cls, params.get(AUX_HEAD.weight), params.get(AUX_HEAD.bias));
  const global = ops.add(
    ops.reshape(g, [0, SLOTS.length, SLOT_WIDTH]),
    ops.constant(slotMask(SLOTS), [SLOTS.length, SLOT_WIDTH]),
  );
  const d = ops.linear(
    ops.slice(h, 1, 1),
    params.get(AUX_PATCH_HEAD.weight),
    params.get(AUX_PATCH_HEAD.bias),
  );
  const dense = ops.add(
    ops.reshape(d, [-1, PATCH_SLOTS.length, SLOT_WIDTH]),
    ops.constant(slotMask(PATCH_SLOTS), [PATCH_SLOTS.length, SLOT_WIDTH]),
  );
  return { global: ops.reshape(global, [-1, SLOT_WIDTH]), dense: ops.reshape(dense, [-1, SLOT_WIDTH]) };
}

/**
 * Seeded init of the tower and the heads with fan-in scaled weights (`stress` scheme: linear and
 * conv weights N(0, 1/fan_in), embeddings N(0, 0.25)), which trains this small ViT from scratch much
 * faster than HF's N(0, 0.02) (sized for widths of 1000+).
 */
export function initEncoder(cfg: VisionConfig, seed: number): Map<string, HostTensor> {
  return initParams(encoderParamSpecs(cfg), { seed, scheme: 'stress' });
}

/** The auxiliary loss: global slot cross-entropy + `denseWeight` x the per-patch one. */
export function encoderLoss<T>(cfg: VisionConfig, denseWeight: number): LossFn<T> {
  return (ops, p, inputs) => {
    const logits = auxLogits(ops, cfg, p, inputs['pixel_values'] as T);
    const global = crossEntropyFromTargets(ops, logits.global, {
      index: inputs['global_index'] as T,
      weight: inputs['global_weight'] as T,
    });
    const dense = crossEntropyFromTargets(ops, logits.dense, {
      index: inputs['dense_index'] as T,
      weight: inputs['dense_weight'] as T,
    });
    return { loss: ops.add(global, ops.mul(dense, ops.scalar(denseWeight))) };
  };
}

/** Host inputs of {@link encoderLoss} for rows `idx` of a split. */
export function encoderInputs(
  cfg: VisionConfig,
  split: SplitTensors,
  idx: ArrayLike<number>,
): Record<string, HostTensor> {
  const s = cfg.imageSize;
  const patchWidth = split.patches.length / split.examples.length;
  const g = prepareCrossEntropyTargets(gatherRows(split.slots, SLOTS.length, idx), SLOT_WIDTH);
  const d = prepareCrossEntropyTargets(gatherRows(split.patches, patchWidth, idx), SLOT_WIDTH);
  return {
    pixel_values: {
      dtype: 'F32',
      shape: [idx.length, 3, s, s],
      data: gatherRows(split.pixels.data, 3 * s * s, idx),
    },
    global_index: g.index,
    global_weight: g.weight,
    dense_index: d.index,
    dense_weight: d.weight,
  };
}

/**
 * Pre-trains the vision tower on the auxiliary objective (cross-entropy of each slot of the scene
 * description from the class token, and of each patch's object from the patch tokens), then leaves
 * it to be frozen. With `o.workers` 2, each batch is split in two halves whose gradients are
 * computed at the same time, one in a worker thread (see {@link GradWorker}), and averaged.
 */
export async function pretrainEncoder<T>(
  backend: TrainingBackend<T>,
  cfg: VisionConfig,
  params: ParamStore<T>,
  train: SplitTensors,
  o: EncoderTrainOptions,
  reporter: DemoReporter,
): Promise<PhaseRun> {
  const trainable = encoderParamSpecs(cfg).map((p) => p.name);
  const batcher = new Batcher(train.examples.length, o.batch, o.seed);
  const loss = encoderLoss<T>(cfg, o.denseWeight ?? 1);
  const worker =
    (o.workers ?? 1) > 1
      ? await GradWorker.start({
          task: 'encoder',
          backend: o.backendName,
          sizes: o.sizes,
          denseWeight: o.denseWeight ?? 1,
        })
      : undefined;
  const phase = reporter.phase(worker ? 'image encoder (2 threads)' : 'image encoder', o.steps, 'steps');
  try {
    const run = await trainPhase(
      backend,
      params,
      {
        steps: o.steps,
        lr: o.lr,
        weightDecay: 0.05,
        trainable,
        ...(o.after ? { after: o.after } : {}),
        compute: async () => {
          const idx = batcher.next();
          if (!worker) return backend.valueAndGrad(loss, params, trainable, encoderInputs(cfg, train, idx));
          return dataParallelGrads(backend, params, trainable, loss, worker, [
            encoderInputs(cfg, train, idx.subarray(0, idx.length >> 1)),
            encoderInputs(cfg, train, idx.subarray(idx.length >> 1)),
          ]);
        },
      },
      phase,
    );
    phase.end();
    return run;
  } finally {
    await worker?.close();
  }
}

/** Accuracy of the auxiliary heads on a split. */
export interface EncoderAccuracy {
  /** Global head, per slot (over the examples where the slot applies). */
  readonly slots: Record<string, number>;
  /** Share of examples with every global slot right. */
  readonly all: number;
  /** Dense head, per slot, over foreground patches. */
  readonly patches: Record<string, number>;
}

function argmax(xs: Float32Array, at: number, width: number): number {
  let best = 0;
  for (let c = 1; c < width; c++) if ((xs[at + c] as number) > (xs[at + best] as number)) best = c;
  return best;
}

/** Accuracy of both auxiliary heads on a split (a measure of what the frozen features hold). */
export async function encoderAccuracy<T>(
  backend: Backend<T>,
  cfg: VisionConfig,
  params: ParamStore<T>,
  split: SplitTensors,
  batch = 200,
): Promise<EncoderAccuracy> {
  const n = split.examples.length;
  const s = cfg.imageSize;
  const px = 3 * s * s;
  const perImage = split.patches.length / n;
  const hits = new Array<number>(SLOTS.length).fill(0);
  const counts = new Array<number>(SLOTS.length).fill(0);
  const pHits = new Array<number>(PATCH_SLOTS.length).fill(0);
  let pCount = 0;
  let allRight = 0;
  for (let start = 0; start < n; start += batch) {
    const rows = Int32Array.from({ length: Math.min(batch, n - start) }, (_, i) => start + i);
    const out = await backend.run(
      'demo:aux-logits',
      (ops, inputs) => auxLogits(ops, cfg, params, inputs['pixel_values'] as T),
      {
        pixel_values: {
          dtype: 'F32',
          shape: [rows.length, 3, s, s],
          data: gatherRows(split.pixels.data, px, rows),
        },
      },
    );
    const g = out.global.data as Float32Array;
    const d = out.dense.data as Float32Array;
    rows.forEach((r, b) => {
      let ok = true;
      SLOTS.forEach((_, k) => {
        const y = split.slots[r * SLOTS.length + k] as number;
        if (y < 0) return;
        counts[k] = (counts[k] as number) + 1;
        if (argmax(g, (b * SLOTS.length + k) * SLOT_WIDTH, SLOT_WIDTH) === y)
          hits[k] = (hits[k] as number) + 1;
        else ok = false;
      });
      if (ok) allRight++;
      for (let q = 0; q < perImage; q += PATCH_SLOTS.length) {
        if (split.patches[r * perImage + q] === 0) continue; // background
        pCount++;
        PATCH_SLOTS.forEach((_, k) => {
          const y = split.patches[r * perImage + q + k] as number;
          if (argmax(d, (b * perImage + q + k) * SLOT_WIDTH, SLOT_WIDTH) === y)
            pHits[k] = (pHits[k] as number) + 1;
        });
      }
    });
  }
  const slots: Record<string, number> = {};
  SLOTS.forEach((sl, k) => {
    slots[sl.name] = (hits[k] as number) / Math.max(1, counts[k] as number);
  });
  const patches: Record<string, number> = {};
  PATCH_SLOTS.forEach((sl, k) => {
    patches[sl.name] = (pHits[k] as number) / Math.max(1, pCount);
  });
  return { slots, all: allRight / n, patches };
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
      pixel_values: {
        dtype: 'F32',
        shape: [rows.length, 3, s, s],
        data: gatherRows(split.pixels.data, px, rows),
      },
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
