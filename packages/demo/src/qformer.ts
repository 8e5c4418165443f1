import {
  type OptLanguageModel,
  causalLmTargets,
  crossEntropyLoss,
  decoderOnlyLabels,
  optPositionIds,
  softPromptInputs,
  softPromptMask,
} from '@qf/bridge';
import {
  type Ops,
  type ParamStore,
  type QFormerModelSpec,
  Rng,
  type TrainingBackend,
  languageProjection,
  qformerEncoder,
  queryTokens,
} from '@qf/core';
import type { Blip2Config, HostTensor } from '@qf/io';
import { STAGE1_NAMES, initStage1Params, stage1ParamSpecs, stage1ValueAndGrad } from '@qf/losses';
import { type SplitTensors, TEXT_LENGTH, TOKENS, gatherRows } from './data.js';
import { Batcher, type PhaseRun, trainPhase } from './loop.js';
import type { DemoSizes } from './config.js';
import type { DemoBackendName } from './options.js';
import { GradWorker } from './parallel.js';
import type { DemoReporter } from './report.js';

/** Every part of the demo Q-Former: text path, retrieval heads, language projection. */
export function qformerSpec(config: Blip2Config): QFormerModelSpec {
  return {
    qformer: config.qformer,
    numQueryTokens: config.numQueryTokens,
    textPath: true,
    retrievalHeads: { imageTextHiddenSize: config.imageTextHiddenSize },
    languageProjection: {
      outFeatures: config.text?.hiddenSize ?? config.qformer.hiddenSize,
    },
  };
}

/**
 * Q-Former + heads + stage-1 extras (`temp` 0.07, the ITG LM head), seeded with HF's scheme (normal
 * weights, zero biases, unit LayerNorms) at `initializerRange` (default 1/sqrt(hidden): HF's 0.02 is
 * sized for hidden 768 and leaves a 64-wide Q-Former's attention uniform for hundreds of steps).
 */
export function initQFormer(
  spec: QFormerModelSpec,
  seed: number,
  initializerRange?: number,
): Map<string, HostTensor> {
  const range = initializerRange ?? 1 / Math.sqrt(spec.qformer.hiddenSize);
  return initStage1Params(spec, {
    seed,
    scheme: 'hf',
    initializerRange: range,
  }) as Map<string, HostTensor>;
}

/** Stage 1 trains everything of stage 1 except the language projection (unused until stage 2). */
export function stage1Trainable(spec: QFormerModelSpec): string[] {
  return stage1ParamSpecs(spec)
    .map((p) => p.name)
    .filter((n) => !n.startsWith('language_projection.'));
}

const LAYER = /^qformer\.encoder\.layer\.\d+\./;

/**
 * How a parameter is used: `query` only by the query rows (query tokens, cross-attention, the query
 * FFN) or after them (the projector), `text` only by the text rows (embeddings, the text FFN),
 * `shared` by both (the embedding LayerNorm and every layer's self-attention), or a `head`.
 */
export function parameterRole(name: string): 'query' | 'text' | 'shared' | 'head' {
  if (name === 'query_tokens' || name.startsWith('language_projection.')) return 'query';
  if (name.startsWith('embeddings.')) return 'text';
  if (name.startsWith('qformer.layernorm.')) return 'shared';
  if (LAYER.test(name)) {
    const rest = name.replace(LAYER, '');
    if (rest.startsWith('attention.')) return 'shared';
    if (/^(crossattention|intermediate_query|output_query)\./.test(rest)) return 'query';
    return 'text'; // intermediate.*, output.*
  }
  return 'head'; // vision_projection, text_projection, itm_head, temp, Qformer.cls.*
}

/**
 * Stage 2 trains what only the soft prompt depends on: the query tokens, cross-attention, the query
 * FFN and the projector. The self-attention and embedding LayerNorm are shared with the text rows
 * and stay as stage 1 left them, so the text side of retrieval does not move.
 */
export function stage2Trainable(spec: QFormerModelSpec): string[] {
  return stage1ParamSpecs(spec)
    .map((p) => p.name)
    .filter((n) => parameterRole(n) === 'query');
}

/** Rows `idx` of the frozen image features [N, tokens, D]. */
export function featureRows(features: HostTensor<'F32'>, idx: ArrayLike<number>): HostTensor<'F32'> {
  const [, n, d] = features.shape as [number, number, number];
  return {
    dtype: 'F32',
    shape: [idx.length, n, d],
    data: gatherRows(features.data, n * d, idx),
  };
}

/** LAVIS clamps the ITC temperature to [0.001, 0.5] after each step. */
function clampTemperature<T>(backend: TrainingBackend<T>, params: ParamStore<T>): () => Promise<void> {
  return () =>
    backend.assignParams((ops) => [
      {
        store: params,
        name: STAGE1_NAMES.temp,
        value: ops.minimum(ops.maximum(params.get(STAGE1_NAMES.temp), ops.scalar(0.001)), ops.scalar(0.5)),
      },
    ]);
}

/** Options of a Q-Former training stage. */
export interface StageOptions {
  readonly steps: number;
  readonly batch: number;
  readonly lr: number;
  readonly seed: number;
}

/**
 * Stage 1 (LAVIS `Blip2Qformer`): ITC + ITM (hard negatives) + ITG on frozen image features, with
 * the caption's scene id as image id (repeated one-object captions are positives of each other).
 * The temperature is clamped to [0.001, 0.5] after each step, as LAVIS does.
 */
export async function trainStage1<T>(
  backend: TrainingBackend<T>,
  spec: QFormerModelSpec,
  params: ParamStore<T>,
  train: SplitTensors,
  features: HostTensor<'F32'>,
  o: StageOptions,
  reporter: DemoReporter,
): Promise<PhaseRun> {
  const trainable = stage1Trainable(spec);
  const batcher = new Batcher(train.examples.length, o.batch, o.seed);
  const rng = new Rng(o.seed + 1);
  const t = TEXT_LENGTH;
  const phase = reporter.phase('stage 1 (ITC+ITM+ITG)', o.steps, 'steps');
  const run = await trainPhase(
    backend,
    params,
    {
      steps: o.steps,
      lr: o.lr,
      weightDecay: 0.05,
      trainable,
      compute: async () => {
        const idx = batcher.next();
        const batch = {
          imageEmbeds: featureRows(features, idx),
          inputIds: {
            dtype: 'I32',
            shape: [idx.length, t],
            data: gatherRows(train.qformerIds, t, idx),
          },
          attentionMask: {
            dtype: 'I32',
            shape: [idx.length, t],
            data: gatherRows(train.qformerMask, t, idx),
          },
          imageId: Array.from(idx, (i) => train.examples[i]?.sceneId ?? -1),
        } as const;
        return stage1ValueAndGrad(backend, spec, params, batch, {
          decoderBosId: TOKENS.qformer.dec,
          padTokenId: TOKENS.qformer.pad,
          trainable,
          rng,
        });
      },
      after: clampTemperature(backend, params),
    },
    phase,
  );
  phase.end();
  return run;
}

/** The soft prompt [B, Q, D] from image features: query pass, then the language projection. */
export function softPrompt<T>(ops: Ops<T>, spec: QFormerModelSpec, params: ParamStore<T>, imageEmbeds: T): T {
  const q = qformerEncoder(ops, spec.qformer, params, {
    queries: queryTokens(ops, params, imageEmbeds),
    queryLength: spec.numQueryTokens,
    image: { embeds: imageEmbeds },
  }).lastHiddenState;
  return languageProjection(ops, params, q);
}

/** Options of stage 2. */
export interface Stage2Options extends StageOptions {
  /**
   * Stage-1 objectives kept alongside the LM loss (default none, as BLIP-2; gradients summed).
   * BLIP-2 evaluates retrieval with its stage-1 model; the demo writes one checkpoint for both, and
   * the LM loss alone moves the query outputs away from the stage-1 alignment.
   */
  readonly keep?: readonly ('itc' | 'itm')[];
  /** Weight of the kept objectives' gradients next to the LM loss's (default 1). */
  readonly keepWeight?: number;
  /** The kept objectives see the first `keepBatch` pairs of each batch (default: all). */
  readonly keepBatch?: number;
  /**
   * 2: the kept objectives' gradients are computed in a worker thread at the same time as the LM
   * loss's here (same weights, same draws: the same numbers as on one thread). Default 1.
   */
  readonly workers?: number;
  /** The backend and model sizes the worker thread rebuilds (needed with `workers` 2). */
  readonly backendName?: DemoBackendName;
  readonly sizes?: DemoSizes;
}

/**
 * Stage 2 (decoder-only, HF `Blip2ForConditionalGeneration.forward`): `[soft prompt ; </s> caption
 * </s>]` through the frozen OPT, cross-entropy on the caption and the final `</s>` (labels -100 on
 * the queries, the BOS and padding), plus the kept stage-1 objectives (gradients summed).
 */
export async function trainStage2<T>(
  backend: TrainingBackend<T>,
  spec: QFormerModelSpec,
  lm: OptLanguageModel,
  params: ParamStore<T>,
  train: SplitTensors,
  features: HostTensor<'F32'>,
  o: Stage2Options,
  reporter: DemoReporter,
): Promise<PhaseRun> {
  const keep = o.keep ?? [];
  const weight = o.keepWeight ?? 1;
  const trainable = keep.length === 0 ? stage2Trainable(spec) : stage2KeepTrainable(spec, keep);
  const batcher = new Batcher(train.examples.length, o.batch, o.seed);
  const rng = new Rng(o.seed + 1);
  const q = spec.numQueryTokens;
  const t = TEXT_LENGTH;
  const lmLoss = (ops: Ops<T>, p: ParamStore<T>, inputs: Record<string, T>) => {
    const soft = softPrompt(ops, spec, p, inputs['image_embeds'] as T);
    const x = softPromptInputs(ops, lm, p, soft, inputs['ids'] as T, inputs['mask'] as T);
    const logits = lm.forward(ops, p, {
      inputsEmbeds: x.inputsEmbeds,
      attentionMask: x.attentionMask,
      positionIds: inputs['pos'] as T,
    }).logits;
    return {
      loss: crossEntropyLoss(ops, logits, inputs['index'] as T, inputs['weight'] as T),
    };
  };
  const rows = (data: Int32Array, idx: Int32Array): HostTensor => ({
    dtype: 'I32',
    shape: [idx.length, t],
    data: gatherRows(data, t, idx),
  });
  const stage1Names = stage1ParamSpecs(spec).map((p) => p.name);
  const worker =
    (o.workers ?? 1) > 1 && keep.length > 0
      ? await GradWorker.start({
          task: 'stage2-keep',
          backend: o.backendName,
          sizes: o.sizes,
          keep,
          rngSeed: o.seed + 1,
        })
      : undefined;
  const phase = reporter.phase(
    `stage 2 (${keep.length ? `LM + ${keep.join('+').toUpperCase()}` : 'LM loss'}${worker ? ', 2 threads' : ''})`,
    o.steps,
    'steps',
  );
  try {
    const run = await trainPhase(
      backend,
      params,
      {
        steps: o.steps,
        lr: o.lr,
        weightDecay: 0.05,
        trainable,
        compute: async () => {
          const idx = batcher.next();
          const ids = rows(train.lmIds, idx);
          const mask = rows(train.lmMask, idx);
          const labels = decoderOnlyLabels(ids, mask, { queryLength: q, promptLength: 1 });
          const targets = causalLmTargets(labels, q + t, lm.shape.vocabSize);
          const imageEmbeds = featureRows(features, idx);
          // The kept objectives' pairs; on the worker they start before the LM loss does here.
          const sub = idx.subarray(0, Math.min(idx.length, o.keepBatch ?? idx.length));
          const keptBatch = () => ({
            imageEmbeds: sub.length === idx.length ? imageEmbeds : featureRows(features, sub),
            inputIds: rows(train.qformerIds, sub),
            attentionMask: rows(train.qformerMask, sub),
            imageId: Array.from(sub, (i) => train.examples[i]?.sceneId ?? -1),
          });
          const remote = worker
            ? worker.compute(await backend.readParams(params, stage1Names), keptBatch())
            : undefined;
          remote?.catch(() => undefined); // awaited below; no unhandled rejection meanwhile
          const caption = await backend.valueAndGrad(lmLoss, params, trainable, {
            image_embeds: imageEmbeds,
            ids,
            mask,
            pos: optPositionIds(softPromptMask(q, mask), 'forward'),
            index: targets.index,
            weight: targets.weight,
          });
          if (keep.length === 0) return caption;
          let kept: { loss: number; outputs: Record<string, HostTensor | undefined>; grads: ParamStore<T> };
          try {
            if (remote) {
              const r = await remote;
              kept = { loss: r.loss, outputs: r.outputs, grads: backend.createParams(r.grads) };
            } else
              kept = await stage1ValueAndGrad(backend, spec, params, keptBatch(), {
                decoderBosId: TOKENS.qformer.dec,
                padTokenId: TOKENS.qformer.pad,
                trainable,
                rng,
                parts: [...keep],
              });
          } catch (e) {
            backend.disposeParams(caption.grads);
            throw e;
          }
          const k = kept;
          try {
            await backend.assignParams((ops) =>
              trainable.map((n) => ({
                store: caption.grads,
                name: n,
                value: ops.add(caption.grads.get(n), ops.mul(k.grads.get(n), ops.scalar(weight))),
              })),
            );
          } finally {
            backend.disposeParams(k.grads);
          }
          const { loss_itc, loss_itm } = k.outputs;
          return {
            loss: caption.loss + weight * k.loss,
            grads: caption.grads,
            outputs: {
              ...(loss_itc ? { loss_itc } : {}),
              ...(loss_itm ? { loss_itm } : {}),
              loss: caption.outputs.loss,
              loss_caption: caption.outputs.loss,
            },
          };
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

/**
 * Stage 2 with kept stage-1 objectives: the query-only parameters (LM loss and the kept objectives),
 * plus the text rows' parameters and the heads the kept objectives use; never the shared
 * self-attention.
 */
export function stage2KeepTrainable(spec: QFormerModelSpec, keep: readonly ('itc' | 'itm')[]): string[] {
  return stage1ParamSpecs(spec)
    .map((p) => p.name)
    .filter((n) => {
      const role = parameterRole(n);
      if (role === 'query' || role === 'text') return true;
      if (role !== 'head' || n.startsWith('Qformer.cls.')) return false;
      return keep.includes('itm') || !n.startsWith('itm_head.');
    });
}
