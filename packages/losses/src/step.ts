import {
  type Backend,
  type GradResult,
  type ParamStore,
  type QFormerModelSpec,
  type Rng,
  requireTraining,
} from '@qf/core';
import type { HostTensor } from '@qf/io';
import {
  type Stage1Batch,
  type Stage1Negatives,
  type Stage1TextOptions,
  prepareStage1Inputs,
} from './batch.js';
import { LossError } from './errors.js';
import { sampleHardNegatives } from './negatives.js';
import { type Stage1LossOptions, stage1Graph, stage1GraphKey, stage1Loss } from './stage1.js';

const WEIGHTS = {
  parts: ['itc'],
  outputs: ['weights_i2t', 'weights_t2i'],
} as const satisfies Stage1LossOptions;

/** Drawn negatives plus the weights they were drawn from. */
export interface SampledNegatives extends Stage1Negatives {
  /** [B, B] softmax of `sim_t2i` with positives at -10000 (row b: text b over images). */
  readonly weightsT2i: HostTensor;
  /** [B, B] softmax of `sim_i2t` with positives at -10000 (row b: image b over texts). */
  readonly weightsI2t: HostTensor;
}

/**
 * Hard-negative mining on any backend: runs the ITC part of the loss (query and text passes) to get
 * the sampling weights, then draws with `rng` on the host ({@link sampleHardNegatives}). LAVIS draws
 * under `no_grad` from the same forward; here the ITC passes run once more inside the training step,
 * which costs about one third of a stage-1 forward and no backward.
 */
export async function sampleStage1Negatives<T>(
  backend: Backend<T>,
  spec: QFormerModelSpec,
  params: ParamStore<T>,
  batch: Stage1Batch,
  rng: Rng,
  options: Stage1TextOptions,
): Promise<SampledNegatives> {
  const inputs = prepareStage1Inputs(spec, batch, { ...options, itm: false, itg: false });
  const out = await backend.run(stage1GraphKey(WEIGHTS), stage1Graph(spec, params, WEIGHTS), inputs);
  const positives = inputs.itc_positive as HostTensor;
  const weightsT2i = out.weights_t2i;
  const weightsI2t = out.weights_i2t;
  return { ...sampleHardNegatives(weightsT2i, weightsI2t, positives, rng), weightsT2i, weightsI2t };
}

/** Options of {@link stage1ValueAndGrad}. */
export interface Stage1StepOptions extends Stage1TextOptions {
  /** Canonical names of the parameters to differentiate (e.g. `stage1ParamSpecs(spec)` names). */
  readonly trainable: readonly string[];
  /** Fixed hard negatives; otherwise they are drawn with `rng`. */
  readonly negatives?: Stage1Negatives;
  readonly rng?: Rng;
  /** Objectives (default all three). */
  readonly parts?: Stage1LossOptions['parts'];
  /** ITG label smoothing (default 0.1). */
  readonly itgLabelSmoothing?: number;
}

/** The loss parts a training step reads back. */
export type Stage1LossName = 'loss_itc' | 'loss_itm' | 'loss_lm';

/**
 * One stage-1 training step's forward and backward: draws the hard negatives (or takes the given
 * ones), then `backend.valueAndGrad` of ITC + ITM + ITG. The gradients stay on the backend.
 * @throws BackendUnsupportedError on a backend without training (ONNX); LossError `LOSS_INPUT`
 *   without `negatives` or `rng` when ITM is on
 */
export async function stage1ValueAndGrad<T>(
  backend: Backend<T>,
  spec: QFormerModelSpec,
  params: ParamStore<T>,
  batch: Stage1Batch,
  options: Stage1StepOptions,
): Promise<GradResult<T, Stage1LossName> & { negatives?: Stage1Negatives | undefined }> {
  const training = requireTraining(backend);
  const parts = options.parts ?? ['itc', 'itm', 'itg'];
  let negatives = options.negatives;
  if (parts.includes('itm') && !negatives) {
    if (!options.rng)
      throw new LossError('LOSS_INPUT', 'stage1ValueAndGrad: ITM needs `negatives` or an `rng` to draw them');
    const s = await sampleStage1Negatives(backend, spec, params, batch, options.rng, options);
    negatives = { negImageIdx: s.negImageIdx, negTextIdx: s.negTextIdx };
  }
  const inputs = prepareStage1Inputs(
    spec,
    batch,
    { ...options, itm: parts.includes('itm'), itg: parts.includes('itg') },
    negatives,
  );
  const loss = stage1Loss<T>(spec, {
    parts,
    ...(options.itgLabelSmoothing !== undefined ? { itgLabelSmoothing: options.itgLabelSmoothing } : {}),
    outputs: ['loss_itc', 'loss_itm', 'loss_lm'],
  });
  const result = await training.valueAndGrad<Stage1LossName>(loss, params, options.trainable, inputs);
  return { ...result, negatives };
}
