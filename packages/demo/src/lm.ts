import { IGNORE_INDEX, type OptLanguageModel, causalLmTargets, crossEntropyLoss } from '@qf/bridge';
import {
  type Backend,
  type Ops,
  type ParamSpec,
  type ParamStore,
  type TrainingBackend,
  initParams,
} from '@qf/core';
import type { HostTensor } from '@qf/io';
import { createRng, deriveSeed } from '@qf/shapes';
import { type SplitTensors, TEXT_LENGTH, gatherRows } from './data.js';
import { Batcher, type PhaseRun, lossStep, trainPhase } from './loop.js';
import type { DemoReporter } from './report.js';

/** Options of the LM pre-training phase. */
export interface LmTrainOptions {
  readonly steps: number;
  readonly batch: number;
  readonly lr: number;
  readonly seed: number;
  /**
   * Largest position offset: each caption starts at a random position in [0, maxOffset], so the
   * positions the soft prompt pushes the caption to in stage 2 (Q onwards) are trained too, as a
   * long-text pre-trained OPT's would be.
   */
  readonly maxOffset: number;
}

/** OPT parameter specs with init kinds (embeddings, linear weights, biases, LayerNorms). */
export function lmParamSpecs(lm: OptLanguageModel): ParamSpec[] {
  return lm.paramSpecs().map((p) => {
    const kind: ParamSpec['kind'] = /embed_(tokens|positions)/.test(p.name)
      ? 'embedding'
      : /layer_norm\.(weight)$/.test(p.name)
        ? 'norm.weight'
        : /layer_norm\.bias$/.test(p.name)
          ? 'norm.bias'
          : p.name.endsWith('.bias')
            ? 'bias'
            : 'linear.weight';
    return { name: p.name, shape: p.shape, kind };
  });
}

/** Seeded init of the LM (fan-in scaled linear weights, embeddings N(0, 0.5^2) as `stress`). */
export function initLm(lm: OptLanguageModel, seed: number): Map<string, HostTensor> {
  return initParams(lmParamSpecs(lm), { seed, scheme: 'stress' });
}

/** Host inputs of the text-only LM loss for rows `idx` of a split, positions offset per row. */
function lmInputs(
  lm: OptLanguageModel,
  split: SplitTensors,
  idx: ArrayLike<number>,
  offsets: ArrayLike<number>,
): Record<string, HostTensor> {
  const b = idx.length;
  const t = TEXT_LENGTH;
  const ids = gatherRows(split.lmIds, t, idx);
  const mask = gatherRows(split.lmMask, t, idx);
  const labels = new Int32Array(b * t);
  const pos = new Int32Array(b * t);
  for (let i = 0; i < b * t; i++) {
    labels[i] = mask[i] ? (ids[i] as number) : IGNORE_INDEX;
    pos[i] = (offsets[Math.floor(i / t)] as number) + (i % t);
  }
  const targets = causalLmTargets({ dtype: 'I32', shape: [b, t], data: labels }, t, lm.shape.vocabSize);
  return {
    ids: { dtype: 'I32', shape: [b, t], data: ids },
    mask: { dtype: 'I32', shape: [b, t], data: mask },
    pos: { dtype: 'I32', shape: [b, t], data: pos },
    index: targets.index,
    weight: targets.weight,
  };
}

function lmLoss<T>(lm: OptLanguageModel) {
  return (ops: Ops<T>, params: ParamStore<T>, inputs: Record<string, T>) => {
    const logits = lm.forward(ops, params, {
      inputsEmbeds: lm.embed(ops, params, inputs['ids'] as T),
      attentionMask: inputs['mask'] as T,
      positionIds: inputs['pos'] as T,
    }).logits;
    return { loss: crossEntropyLoss(ops, logits, inputs['index'] as T, inputs['weight'] as T) };
  };
}

/** Pre-trains the OPT LM on the train captions (next-token prediction from `</s>` to `</s>`). */
export async function pretrainLm<T>(
  backend: TrainingBackend<T>,
  lm: OptLanguageModel,
  params: ParamStore<T>,
  train: SplitTensors,
  o: LmTrainOptions,
  reporter: DemoReporter,
): Promise<PhaseRun> {
  const specs = lmParamSpecs(lm);
  const trainable = specs.map((p) => p.name);
  const batcher = new Batcher(train.examples.length, o.batch, o.seed);
  const rng = createRng(deriveSeed(o.seed, 1));
  const phase = reporter.phase('language model', o.steps, 'steps');
  const run = await trainPhase(
    backend,
    params,
    {
      steps: o.steps,
      lr: o.lr,
      weightDecay: 0.01,
      trainable,
      compute: lossStep(backend, params, trainable, lmLoss<T>(lm), () => {
        const idx = batcher.next();
        const offsets = Array.from(idx, () => rng.int(o.maxOffset + 1));
        return lmInputs(lm, train, idx, offsets);
      }),
    },
    phase,
  );
  phase.end();
  return run;
}

/**
 * Perplexity of the LM on a split's captions (every token after `</s>`, the final `</s>` included),
 * with the captions at position offset `offset`.
 */
export async function lmPerplexity<T>(
  backend: Backend<T>,
  lm: OptLanguageModel,
  params: ParamStore<T>,
  split: SplitTensors,
  offset: number,
  batch = 200,
): Promise<number> {
  const n = split.examples.length;
  let total = 0;
  let count = 0;
  const loss = lmLoss<T>(lm);
  for (let start = 0; start < n; start += batch) {
    const idx = Array.from({ length: Math.min(batch, n - start) }, (_, i) => start + i);
    const inputs = lmInputs(lm, split, idx, new Array(idx.length).fill(offset));
    const w = inputs['weight']?.data as Float32Array;
    const tokens = w.reduce((a, b) => a + b, 0);
    const out = await backend.run('demo:lm-loss', (ops, x) => loss(ops, params, x), inputs);
    total += ((out.loss.data as Float32Array)[0] as number) * tokens;
    count += tokens;
  }
  return Math.exp(total / count);
}
