import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { type InitScheme, type QFormerModel, initParams, qformerParamSpecs } from '@qf/core';
import { loadQFormerFromDir } from '@qf/core/node';
import type { HostTensor } from '@qf/io';
import { writeCheckpointDir, writeSafetensorsFile } from '@qf/io/node';
import {
  type CliBackendName,
  DEFAULT_ONNX_THREADS,
  checkThreads,
  closeBackend,
  openBackend,
} from './backend.js';
import { configLines, summarizeConfig } from './config-summary.js';
import { type DemoBatch, makeDemoBatch } from './demo-data.js';
import { demoConfig, demoSpec } from './demo-model.js';
import { fmtBytes, fmtCount, fmtMs, fmtShape, keyValues, table } from './format.js';
import { progressBar } from './progress.js';
import type { CliStreams } from './streams.js';
import { concatRows } from './tensors.js';
import { VERSION } from './version.js';

/** Options of `qf demo`. */
export interface DemoOptions {
  /** Output directory (default `./qf-demo-out`). */
  readonly out?: string;
  readonly backend?: CliBackendName;
  /** `onnx` only: ONNX Runtime threads per operator (default 2). */
  readonly threads?: number | undefined;
  readonly seed?: number;
  /** Pairs per batch (default 8). */
  readonly batch?: number;
  /** Number of batches (default 4). */
  readonly batches?: number;
  /** Parameter init: `hf` (as HF initialises a fresh model, default) or `stress` (every value non-trivial). */
  readonly init?: InitScheme;
}

/** What `qf demo` produced. */
export interface DemoResult {
  readonly outDir: string;
  readonly modelDir: string;
  readonly featuresPath: string;
  readonly inputsPath: string;
  readonly features: Record<string, HostTensor<'F32'>>;
  readonly paramCount: number;
  readonly timings: {
    readonly init: number;
    readonly save: number;
    readonly load: number;
    readonly run: number;
    readonly total: number;
  };
}

const TEXT_LENGTH = 12;

/**
 * `qf demo`: builds a small BLIP-2-style Q-Former in code, seeds its parameters, saves it as an HF
 * model directory, loads it back, and runs feature extraction and ITM/ITC scoring over synthetic
 * batches, writing the results to `features.safetensors`. The model is untrained: this shows the
 * pipeline end to end, not learned behaviour.
 */
export async function runDemo(options: DemoOptions, streams: CliStreams): Promise<DemoResult> {
  const t0 = performance.now();
  const outDir = resolve(options.out ?? 'qf-demo-out');
  const modelDir = join(outDir, 'model');
  const seed = options.seed ?? 0;
  const batch = options.batch ?? 8;
  const batches = options.batches ?? 4;
  const init = options.init ?? 'hf';
  const backendName = options.backend ?? 'tfjs-cpu';
  checkThreads(backendName, options.threads);

  const config = demoConfig();
  const spec = demoSpec(config);
  const params = initParams(qformerParamSpecs(spec), {
    seed,
    scheme: init,
    initializerRange: config.initializerRange,
  });
  const paramCount = [...params.values()].reduce((n, t) => n + t.data.length, 0);
  const t1 = performance.now();
  await mkdir(outDir, { recursive: true });
  await writeCheckpointDir(modelDir, { config, tensors: Object.fromEntries(params) });
  const t2 = performance.now();
  const backend = await openBackend(backendName, { threads: options.threads });
  let model: QFormerModel<unknown>;
  try {
    model = await loadQFormerFromDir<unknown>(backend, modelDir, { strict: true });
  } catch (e) {
    await closeBackend(backend);
    throw e;
  }
  const t3 = performance.now();

  const shape = {
    batch,
    imageTokens: summarizeConfig(config).vision?.tokens ?? 1,
    imageWidth: config.vision.hiddenSize,
    textLength: TEXT_LENGTH,
    vocabSize: config.qformer.vocabSize,
  };
  const data: DemoBatch[] = [];
  const parts: Record<string, HostTensor<'F32'>[]> = {};
  const keep = (name: string, t: HostTensor | undefined) => {
    if (!t) return;
    parts[name] = [...(parts[name] ?? []), t as HostTensor<'F32'>];
  };
  const bar = progressBar(streams.progress, 'qf demo', batches);
  try {
    for (let i = 0; i < batches; i++) {
      const b = makeDemoBatch(seed, i, shape);
      data.push(b);
      const feats = await model.extractFeatures(b.imageEmbeds);
      const text = await model.encodeText(b.inputIds, b.attentionMask);
      const scores = await model.score(b.imageEmbeds, b.inputIds, b.attentionMask);
      keep('query_output', feats.queryOutput);
      keep('image_feats', feats.imageFeats);
      keep('language_projection', feats.languageProjection);
      keep('text_feat', text.textFeat);
      keep('itm_logits', scores.itm);
      keep('itc_logits', scores.itc);
      bar.tick();
    }
  } finally {
    bar.stop();
    model.dispose();
    await closeBackend(backend);
  }
  const t4 = performance.now();

  const features: Record<string, HostTensor<'F32'>> = {};
  for (const [name, list] of Object.entries(parts))
    features[name] = concatRows(name, list, name === 'itc_logits');
  const metadata = {
    format: 'pt',
    producer: `@qf/cli ${VERSION} qf demo`,
    backend: backendName,
    seed: String(seed),
    init,
    batch: String(batch),
    batches: String(batches),
  };
  const featuresPath = join(outDir, 'features.safetensors');
  const inputsPath = join(outDir, 'inputs.safetensors');
  await writeSafetensorsFile(featuresPath, features, metadata);
  await writeSafetensorsFile(
    inputsPath,
    {
      image_embeds: concatRows(
        'image_embeds',
        data.map((d) => d.imageEmbeds),
      ),
      input_ids: concatRows(
        'input_ids',
        data.map((d) => d.inputIds),
      ),
      attention_mask: concatRows(
        'attention_mask',
        data.map((d) => d.attentionMask),
      ),
    },
    metadata,
  );
  const t5 = performance.now();
  return {
    outDir,
    modelDir,
    featuresPath,
    inputsPath,
    features,
    paramCount,
    timings: { init: t1 - t0, save: t2 - t1, load: t3 - t2, run: t4 - t3, total: t5 - t0 },
  };
}

const threadsText = (n: number) => `${n} thread${n === 1 ? '' : 's'}`;

/** The `qf demo` command: {@link runDemo} plus its summary. */
export async function demoCommand(options: DemoOptions, streams: CliStreams): Promise<void> {
  const batch = options.batch ?? 8;
  const batches = options.batches ?? 4;
  streams.out(
    'qf demo: a randomly initialised BLIP-2-style Q-Former run on synthetic image features and captions.\n' +
      'Nothing is trained or downloaded; the real `shapes` recipe (train stage 1 + 2, evaluate) is not built yet.\n\n',
  );
  const r = await runDemo(options, streams);
  const s = summarizeConfig(demoConfig());
  const t = r.timings;
  streams.out(
    keyValues([
      ...configLines(s),
      [
        'parameters',
        `${fmtCount(r.paramCount)} (${fmtBytes(r.paramCount * 4)} F32), init "${options.init ?? 'hf'}", seed ${options.seed ?? 0}`,
      ],
      ['model dir', `${r.modelDir} (config.json + model.safetensors; no vision tower or LM weights)`],
      [
        'data',
        `${batches} batches x ${batch} synthetic pairs: image features [${batch}, ${s.vision?.tokens}, ${s.vision?.hiddenSize}] F32, token ids [${batch}, ${TEXT_LENGTH}] I64`,
      ],
      [
        'backend',
        options.backend === 'onnx'
          ? `onnx (ONNX Runtime, ${threadsText(options.threads ?? DEFAULT_ONNX_THREADS)} per operator)`
          : (options.backend ?? 'tfjs-cpu'),
      ],
      [
        'time',
        `init ${fmtMs(t.init)}, save ${fmtMs(t.save)}, reload ${fmtMs(t.load)}, extract + score ${fmtMs(t.run)} (${fmtMs(t.run / batches)}/batch), total ${fmtMs(t.total)}`,
      ],
    ]),
  );
  streams.out(`\nfeatures (${r.featuresPath}):\n`);
  streams.out(
    table(
      ['name', 'shape'],
      Object.entries(r.features).map(([k, v]) => [k, fmtShape(v.shape)]),
    ),
  );
  streams.out(
    `\ninputs for qf run: ${r.inputsPath}\n` +
      'next:\n' +
      `  qf inspect ${r.modelDir}\n` +
      `  qf run ${r.modelDir} --inputs ${r.inputsPath} --out ${join(r.outDir, 'run.safetensors')}\n`,
  );
}
