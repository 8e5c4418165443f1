import {
  type InitScheme,
  type ParamKind,
  type ParamSpec,
  type QFormerModelConfig,
  type QFormerModelSpec,
  Rng,
  initParams,
  loadQFormerTensors,
  readParamTensor,
  qformerModelConfigFromJson,
  qformerParamSpecs,
} from '@qf/core';
import {
  type Checkpoint,
  type HostTensor,
  TensorError,
  detectCheckpointLayout,
  fmtShape,
  toCanonicalName,
  toFloat32,
} from '@qf/io';
import { LossError } from './errors.js';
import { STAGE1_NAMES } from './lm-head.js';

/** One stage-1 extra parameter: like core's `ParamSpec`, plus the scalar temperature. */
export interface Stage1ParamSpec {
  readonly name: string;
  readonly shape: readonly number[];
  readonly kind: ParamKind | 'temperature';
}

/** LAVIS's initial ITC temperature (`nn.Parameter(0.07 * torch.ones([]))`). */
export const INITIAL_TEMPERATURE = 0.07;

/** Checks that `spec` has what the stage-1 losses read (text path and retrieval heads). */
export function checkStage1Spec(spec: QFormerModelSpec): void {
  if (!spec.textPath)
    throw new LossError(
      'LOSS_MODEL',
      'stage-1 losses need the Q-Former text path (word embeddings, text FFN)',
    );
  if (!spec.retrievalHeads)
    throw new LossError(
      'LOSS_MODEL',
      'stage-1 losses need the retrieval heads (vision_projection, text_projection, itm_head)',
    );
}

/**
 * The parameters stage 1 trains besides the Q-Former model's own (`qformerParamSpecs`): `temp` and
 * the LM head transform and bias (canonical names in {@link STAGE1_NAMES}).
 */
export function stage1ExtraParamSpecs(spec: QFormerModelSpec): Stage1ParamSpec[] {
  const h = spec.qformer.hiddenSize;
  const n = STAGE1_NAMES;
  return [
    { name: n.temp, shape: [], kind: 'temperature' },
    { name: n.transformDenseWeight, shape: [h, h], kind: 'linear.weight' },
    { name: n.transformDenseBias, shape: [h], kind: 'bias' },
    { name: n.transformNormWeight, shape: [h], kind: 'norm.weight' },
    { name: n.transformNormBias, shape: [h], kind: 'norm.bias' },
    { name: n.bias, shape: [spec.qformer.vocabSize], kind: 'bias' },
  ];
}

/** Every stage-1 parameter: the Q-Former model's, then the extras. */
export function stage1ParamSpecs(spec: QFormerModelSpec): Stage1ParamSpec[] {
  checkStage1Spec(spec);
  return [...qformerParamSpecs(spec), ...stage1ExtraParamSpecs(spec)];
}

/** Options of {@link initStage1Params}. */
export interface Stage1InitOptions {
  readonly seed: number;
  /** core's schemes; `hf` sets `temp` to 0.07, `stress` draws it from U(0.05, 0.1) like the golden data. */
  readonly scheme?: InitScheme;
  readonly initializerRange?: number;
  /** Overrides the initial temperature. */
  readonly temperature?: number;
}

/** Seeded float32 values for every stage-1 parameter (Q-Former model + extras). */
export function initStage1Params(
  spec: QFormerModelSpec,
  options: Stage1InitOptions,
): Map<string, HostTensor<'F32'>> {
  const scheme = options.scheme ?? 'hf';
  const common = {
    scheme,
    ...(options.initializerRange !== undefined ? { initializerRange: options.initializerRange } : {}),
  };
  checkStage1Spec(spec);
  const out = initParams(qformerParamSpecs(spec), { seed: options.seed, ...common });
  const extras = stage1ExtraParamSpecs(spec).filter((p): p is ParamSpec => p.kind !== 'temperature');
  for (const [name, t] of initParams(extras, { seed: options.seed + 1, ...common })) out.set(name, t);
  const rng = new Rng(options.seed + 2);
  const temp =
    options.temperature ?? (scheme === 'stress' ? 0.05 + 0.05 * rng.uniform() : INITIAL_TEMPERATURE);
  out.set(STAGE1_NAMES.temp, { dtype: 'F32', shape: [], data: Float32Array.of(temp) });
  return out;
}

/** Options of {@link loadStage1Tensors}. */
export interface Stage1LoadOptions {
  /** Throw on checkpoint tensors stage 1 does not use (default: report them in `ignored`). */
  readonly strict?: boolean;
}

/** Result of {@link loadStage1Tensors}. */
export interface LoadedStage1 {
  readonly spec: QFormerModelSpec;
  /** Canonical name -> float32 tensor: exactly the tensors of {@link stage1ParamSpecs}. */
  readonly tensors: Map<string, HostTensor>;
  /** Checkpoint tensors that were not loaded (vision tower, LM, language projection...). */
  readonly ignored: string[];
}

/**
 * Reads everything stage 1 trains from a checkpoint in any supported layout: the Q-Former model
 * (core's loader) plus `temp` and `Qformer.cls.predictions.*` (same names in the LAVIS and HF
 * layouts). The tied copies `Qformer.cls.predictions.decoder.{weight,bias}` are not loaded but,
 * when present, must equal the word embeddings and `Qformer.cls.predictions.bias`.
 * @param config parsed `config.json` content, or a `QFormerModelConfig`
 * @throws TensorError naming a missing or mis-shaped tensor, or a tied copy that differs
 *   (`TENSOR_VALUE`); LossError `LOSS_MODEL` when the checkpoint has no text path or retrieval heads
 */
export async function loadStage1Tensors(
  checkpoint: Checkpoint,
  config: unknown,
  options: Stage1LoadOptions = {},
): Promise<LoadedStage1> {
  const modelConfig = isModelConfig(config) ? config : qformerModelConfigFromJson(config);
  const layout = detectCheckpointLayout(checkpoint.names());
  const canonicalName = (n: string) => toCanonicalName(layout, n);
  const loaded = await loadQFormerTensors(checkpoint, modelConfig, { canonicalName });
  checkStage1Spec(loaded.spec);
  const byCanonical = new Map<string, string>();
  for (const name of checkpoint.names()) {
    const c = canonicalName(name);
    if (c !== undefined) byCanonical.set(c, name);
  }
  const tensors = new Map(loaded.tensors);
  const used = new Set<string>();
  for (const p of stage1ExtraParamSpecs(loaded.spec)) {
    tensors.set(p.name, await readParamTensor(checkpoint, byCanonical, p));
    used.add(byCanonical.get(p.name) as string);
  }
  const n = STAGE1_NAMES;
  for (const [copy, source] of [
    [n.decoderWeight, n.wordEmbeddings],
    [n.decoderBias, n.bias],
  ] as const) {
    const name = byCanonical.get(copy);
    if (name === undefined) continue;
    const expected = tensors.get(source) as HostTensor;
    const actual = await checkpoint.read(name, { float32: true });
    if (!sameValues(expected, actual))
      throw new TensorError(
        'TENSOR_VALUE',
        name,
        `must equal ${source} (LAVIS ties them); stage 1 uses ${source}`,
        fmtShape(expected.shape),
        fmtShape(actual.shape),
      );
    used.add(name);
  }
  const ignored = loaded.ignored.filter((name) => !used.has(name));
  if (options.strict && ignored.length > 0)
    throw new TensorError(
      'TENSOR_UNEXPECTED',
      ignored[0] ?? '',
      `${ignored.length} checkpoint tensor(s) are not used by stage 1`,
    );
  return { spec: loaded.spec, tensors, ignored };
}

/**
 * The stage-1 tensors to write into a checkpoint: `tensors` plus the tied copies
 * `Qformer.cls.predictions.decoder.{weight,bias}`, so that LAVIS's `Blip2Qformer` loads the file
 * strictly once mapped to its names. HF `Blip2ForImageTextRetrieval.from_pretrained` loads the same
 * file and reports `temp` and `Qformer.cls.*` as unused weights.
 */
export function stage1CheckpointTensors(tensors: ReadonlyMap<string, HostTensor>): Map<string, HostTensor> {
  const n = STAGE1_NAMES;
  const out = new Map(tensors);
  const words = tensors.get(n.wordEmbeddings);
  const bias = tensors.get(n.bias);
  if (!words || !bias)
    throw new TensorError('TENSOR_MISSING', words ? n.bias : n.wordEmbeddings, 'needed for the tied LM head');
  out.set(n.decoderWeight, words);
  out.set(n.decoderBias, bias);
  return out;
}

function isModelConfig(x: unknown): x is QFormerModelConfig {
  return typeof x === 'object' && x !== null && 'qformer' in x && 'numQueryTokens' in x;
}

function sameValues(a: HostTensor, b: HostTensor): boolean {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) return false;
  const x = toFloat32(a);
  const y = toFloat32(b);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}
