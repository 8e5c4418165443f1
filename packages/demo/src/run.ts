import { OptLanguageModel } from '@qf/bridge';
import { type ParamStore, visionParamSpecs } from '@qf/core';
import { loadQFormerFromDir } from '@qf/core/node';
import { type HostTensor, isBlip2Config, parseModelConfig } from '@qf/io';
import { openCheckpointDir } from '@qf/io/node';
import { deriveSeed } from '@qf/shapes';
import { commitStaged, stageCheckpoint, writeFigures } from './checkpoint.js';
import { demoConfig, demoConfigJson } from './config.js';
import { type SplitTensors, TEXT_LENGTH, demoData, gatherRows, headRows } from './data.js';
import {
  type EncoderAccuracy,
  encodeImages,
  encoderAccuracy,
  initEncoder,
  pretrainEncoder,
} from './encoder.js';
import { DemoError } from './errors.js';
import { openTraining } from './backend.js';
import { type CaptionSample, type DemoFigures, checkTargets, evaluateSplit } from './evaluate.js';
import { initLm, lmPerplexity, pretrainLm } from './lm.js';
import type { PhaseRun } from './loop.js';
import { type ShapesDemoInput, type ShapesDemoOptions, resolveDemoOptions } from './options.js';
import { featureRows, initQFormer, qformerSpec, trainStage1, trainStage2 } from './qformer.js';
import { type DemoReporter, silentReporter } from './report.js';
import { readFrozen } from './reuse.js';

/** Seconds and speed of each phase. */
export interface DemoTimings {
  readonly data: number;
  readonly encoder: PhaseRun;
  readonly features: number;
  readonly lm: PhaseRun;
  readonly stage1: PhaseRun;
  readonly stage2: PhaseRun;
  readonly evaluate: number;
  readonly total: number;
}

/** What {@link runShapesDemo} returns (and writes to `demo.json`). */
export interface ShapesDemoResult {
  readonly figures: DemoFigures;
  /** Validation figures, when `validate` is on. */
  readonly validation?: DemoFigures | undefined;
  readonly samples: readonly CaptionSample[];
  readonly checkpointDir: string;
  readonly timings: DemoTimings;
  /** The frozen encoder's auxiliary-head accuracy on the validation split. */
  readonly encoder: EncoderAccuracy | undefined;
  /** The frozen LM's caption perplexity on the validation split (captions after Q positions). */
  readonly lmPerplexity: number;
  /** Mean loss of the last 50 steps of each phase. */
  readonly finalLoss: {
    readonly encoder: number;
    readonly lm: number;
    readonly stage1: number;
    readonly stage2: number;
    /** Stage-1 parts (`loss_itc`, `loss_itm`, `loss_lm` = ITG). */
    readonly stage1Parts: Record<string, number>;
  };
  readonly options: ShapesDemoOptions;
  readonly backend: string;
}

/** Test images written to `samples/` with their `qf run` inputs. */
const SAMPLE_IMAGES = 8;

function sampleInputs(
  split: SplitTensors,
  features: HostTensor<'F32'>,
  n: number,
): Record<string, HostTensor> {
  const idx = Array.from({ length: n }, (_, i) => i);
  const t = TEXT_LENGTH;
  const i64 = (a: Int32Array): HostTensor => ({
    dtype: 'I64',
    shape: [n, t],
    data: BigInt64Array.from(a, (v) => BigInt(v)),
  });
  return {
    image_embeds: featureRows(features, idx),
    input_ids: i64(gatherRows(split.qformerIds, t, idx)),
    attention_mask: i64(gatherRows(split.qformerMask, t, idx)),
  };
}

/** The run of a phase that was skipped (frozen weights reused). */
const skipped: PhaseRun = { losses: [], parts: {}, seconds: 0, stepsPerSecond: 0 };

const now = () => performance.now() / 1000;
const mean50 = (xs: readonly number[]) => {
  const t = xs.slice(-50);
  return t.reduce((a, b) => a + b, 0) / Math.max(1, t.length);
};
const tail = (r: PhaseRun) => mean50(r.losses);
const tailParts = (r: PhaseRun) =>
  Object.fromEntries(Object.entries(r.parts).map(([k, v]) => [k, mean50(v)]));

function subset(
  m: ReadonlyMap<string, HostTensor>,
  keep: (name: string) => boolean,
): Map<string, HostTensor> {
  return new Map([...m].filter(([k]) => keep(k)));
}

/**
 * The `shapes` recipe end to end: data, image encoder pre-training (then frozen; its features are
 * computed once), LM pre-training (then frozen), stage 1, stage 2, a checkpoint directory, and the
 * held-out figures, evaluated from the checkpoint as written.
 */
export async function runShapesDemo(
  input: ShapesDemoInput = {},
  reporter: DemoReporter = silentReporter,
): Promise<ShapesDemoResult> {
  const o = resolveDemoOptions(input);
  const t0 = now();
  const configJson = demoConfigJson(o.sizes);
  const config = demoConfig(o.sizes);
  const backend = await openTraining(o.backend);
  const stores: ParamStore<unknown>[] = [];
  const keep = <S extends ParamStore<unknown>>(s: S) => {
    stores.push(s);
    return s;
  };
  try {
    const data = demoData(
      o.seed,
      { train: o.trainSize, validation: o.validationSize, test: o.testSize },
      o.sizes.imageSize,
      o.sizes.patchSize,
    );
    // The Q-Former stages train on the first rows of the training split (see qformerTrainSize).
    const qTrain = headRows(data.train, o.qformerTrainSize);
    const tData = now() - t0;
    reporter.info(
      `data: ${o.trainSize} train (Q-Former stages: the first ${o.qformerTrainSize}) / ${o.validationSize} validation / ${o.testSize} test shapes images, seed ${o.seed}`,
    );

    // Image encoder: pre-train on the auxiliary objective, freeze, encode every image once.
    const vision = config.vision;
    const visionParams = keep(
      backend.createParams(
        o.encoderFrom
          ? new Map([
              ...initEncoder(vision, deriveSeed(o.seed, 10)),
              ...(await readFrozen(o.encoderFrom, visionParamSpecs(vision))),
            ])
          : initEncoder(vision, deriveSeed(o.seed, 10)),
      ),
    );
    const encRun = o.encoderFrom
      ? skipped
      : await pretrainEncoder(
          backend,
          vision,
          visionParams,
          data.train,
          {
            ...o.encoder,
            seed: deriveSeed(o.seed, 11),
            workers: o.workers,
            backendName: o.backend,
            sizes: o.sizes,
          },
          reporter,
        );
    if (o.encoderFrom) reporter.info(`image encoder: reused from ${o.encoderFrom}`);
    // The auxiliary heads of a reused encoder are not in its checkpoint: no accuracy to report.
    const encAcc = o.encoderFrom
      ? undefined
      : await encoderAccuracy(backend, vision, visionParams, data.validation);
    const t1 = now();
    const features = {
      train: await encodeImages(backend, vision, visionParams, qTrain),
      validation: await encodeImages(backend, vision, visionParams, data.validation),
      test: await encodeImages(backend, vision, visionParams, data.test),
    };
    const tFeatures = now() - t1;
    const visionTensors = subset(await backend.readParams(visionParams), (n) =>
      n.startsWith('vision_model.'),
    );
    backend.disposeParams(visionParams);
    stores.splice(stores.indexOf(visionParams), 1);

    // Language model: pre-train on the captions, freeze.
    const lm = OptLanguageModel.fromTextConfig(configJson['text_config']);
    const spec = qformerSpec(config);
    const lmInit = o.lmFrom
      ? await readFrozen(o.lmFrom, lm.paramSpecs())
      : initLm(lm, deriveSeed(o.seed, 20));
    const params = keep(
      backend.createParams(new Map([...lmInit, ...initQFormer(spec, deriveSeed(o.seed, 30))])),
    );
    const lmRun = o.lmFrom
      ? skipped
      : await pretrainLm(
          backend,
          lm,
          params,
          data.train,
          { ...o.lm, seed: deriveSeed(o.seed, 21), maxOffset: spec.numQueryTokens },
          reporter,
        );
    if (o.lmFrom) reporter.info(`language model: reused from ${o.lmFrom}`);
    const ppl = await lmPerplexity(backend, lm, params, data.validation, spec.numQueryTokens);

    // Q-Former: stage 1 then stage 2 on the frozen features and the frozen LM.
    const s1 = await trainStage1(
      backend,
      spec,
      params,
      qTrain,
      features.train,
      { ...o.stage1, seed: deriveSeed(o.seed, 31) },
      reporter,
    );
    const s2 = await trainStage2(
      backend,
      spec,
      lm,
      params,
      qTrain,
      features.train,
      {
        ...o.stage2,
        seed: deriveSeed(o.seed, 32),
        keep: o.stage2Keep.objectives,
        keepWeight: o.stage2Keep.weight,
        keepBatch: o.stage2Keep.batch,
        workers: o.workers,
        backendName: o.backend,
        sizes: o.sizes,
      },
      reporter,
    );

    // Checkpoint (staged), then evaluate what was written.
    const all = await backend.readParams(params);
    const lmTensors = subset(all, (n) => n.startsWith('language_model.'));
    const qTensors = subset(all, (n) => !n.startsWith('language_model.'));
    backend.disposeParams(params);
    stores.splice(stores.indexOf(params), 1);
    const staged = await stageCheckpoint(o.out, {
      config: configJson,
      vision: visionTensors,
      qformer: qTensors,
      lm: lmTensors,
      samples: data.dataset.test.slice(0, SAMPLE_IMAGES),
      sampleInputs: sampleInputs(data.test, features.test, Math.min(SAMPLE_IMAGES, o.testSize)),
      metadata: { producer: '@qf/demo shapes recipe', seed: String(o.seed), backend: backend.name },
    });
    let checkpointDir: string;
    try {
      const t2 = now();
      const model = await loadQFormerFromDir(backend, staged);
      const { config: raw, checkpoint } = await openCheckpointDir(staged);
      const parsed = parseModelConfig(raw);
      if (!isBlip2Config(parsed) || !parsed.text)
        throw new DemoError('DEMO_DATA', 'the staged config has no text_config');
      const lmLoaded = OptLanguageModel.fromTextConfig(parsed.text.raw);
      const lmParams = keep(backend.createParams((await lmLoaded.loadTensors(checkpoint)).tensors));
      await checkpoint.close();
      let validation: DemoFigures | undefined;
      let test: Awaited<ReturnType<typeof evaluateSplit>>;
      try {
        const ev = { rerankK: o.rerankK, samples: o.samples };
        if (o.validate)
          validation = (
            await evaluateSplit(
              backend,
              model,
              lmLoaded,
              lmParams,
              data.validation,
              features.validation,
              'validation',
              { ...ev, samples: 0 },
              reporter,
            )
          ).figures;
        test = await evaluateSplit(
          backend,
          model,
          lmLoaded,
          lmParams,
          data.test,
          features.test,
          'test',
          ev,
          reporter,
        );
      } finally {
        model.dispose();
      }
      const tEval = now() - t2;
      const timings: DemoTimings = {
        data: tData,
        encoder: encRun,
        features: tFeatures,
        lm: lmRun,
        stage1: s1,
        stage2: s2,
        evaluate: tEval,
        total: now() - t0,
      };
      const result: Omit<ShapesDemoResult, 'checkpointDir'> = {
        figures: test.figures,
        validation,
        samples: test.samples,
        timings,
        encoder: encAcc,
        lmPerplexity: ppl,
        finalLoss: {
          encoder: tail(encRun),
          lm: tail(lmRun),
          stage1: tail(s1),
          stage2: tail(s2),
          stage1Parts: tailParts(s1),
        },
        options: o,
        backend: backend.name,
      };
      await writeFigures(staged, demoJson(result));
      checkpointDir = await commitStaged(staged, o.out);
      return { ...result, checkpointDir };
    } catch (e) {
      const { rm } = await import('node:fs/promises');
      await rm(staged, { recursive: true, force: true });
      throw e;
    }
  } finally {
    for (const s of stores) backend.disposeParams(s);
  }
}

/** The `demo.json` content: figures, samples, timings (seconds, steps/s), options. */
export function demoJson(r: Omit<ShapesDemoResult, 'checkpointDir'>): Record<string, unknown> {
  const phase = (p: PhaseRun) => ({
    steps: p.losses.length,
    seconds: p.seconds,
    stepsPerSecond: p.stepsPerSecond,
  });
  const t = r.timings;
  return {
    recipe: 'shapes',
    backend: r.backend,
    figures: r.figures,
    targets: checkTargets(r.figures),
    ...(r.validation ? { validation: r.validation } : {}),
    samples: r.samples,
    encoderValidationAccuracy: r.encoder,
    lmValidationPerplexity: r.lmPerplexity,
    finalLoss: r.finalLoss,
    timings: {
      data: t.data,
      encoder: phase(t.encoder),
      features: t.features,
      lm: phase(t.lm),
      stage1: phase(t.stage1),
      stage2: phase(t.stage2),
      evaluate: t.evaluate,
      total: t.total,
    },
    options: r.options,
  };
}
