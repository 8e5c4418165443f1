import {
  type QFormerModelSpec,
  loadQFormerTensors,
  loadVisionTensors,
  qformerModelConfig,
  qformerParamSpecs,
  visionParamSpecs,
} from '@qf/core';
import {
  type Blip2Config,
  type Checkpoint,
  type HostTensor,
  TensorError,
  detectCheckpointLayout,
  fmtShape,
  fromCanonicalName,
  toCanonicalName,
} from '@qf/io';
import { OptLanguageModel } from '../opt/lm.js';
import { LM_PREFIX, OPT_NAMES } from '../opt/params.js';
import type { Blip2LanguageModel } from './config.js';
import { Blip2Error } from './errors.js';

/** Options of `Blip2Model.load`. */
export interface Blip2LoadOptions {
  /**
   * Throw TensorError `TENSOR_UNEXPECTED` naming the first checkpoint tensor no part reads (default
   * false: they are listed in `ignored`). Tied copies (OPT `lm_head`, T5 `encoder/decoder.embed_tokens`)
   * are never counted.
   */
  readonly strict?: boolean | undefined;
}

/** What {@link loadBlip2Tensors} read. */
export interface LoadedBlip2 {
  /** The Q-Former as the model runs it (text path for InstructBLIP, projector, no retrieval heads). */
  readonly spec: QFormerModelSpec;
  /** Canonical name -> float32 tensor: vision tower, Q-Former, projector and LM. */
  readonly tensors: Map<string, HostTensor>;
  /** Checkpoint tensors that no part reads. */
  readonly ignored: string[];
}

/** The Q-Former spec of a whole model: the text path exactly for InstructBLIP, the projector to the LM. */
export function blip2QFormerSpec(config: Blip2Config, lm: Blip2LanguageModel): QFormerModelSpec {
  return {
    qformer: config.qformer,
    numQueryTokens: config.numQueryTokens,
    textPath: config.modelType === 'instructblip',
    retrievalHeads: undefined,
    languageProjection: { outFeatures: lm.shape.hiddenSize },
  };
}

/** Every parameter (canonical name, shape) a whole model reads. */
export function blip2ParamShapes(
  config: Blip2Config,
  lm: Blip2LanguageModel,
): Map<string, readonly number[]> {
  const out = new Map<string, readonly number[]>();
  for (const p of visionParamSpecs(config.vision)) out.set(p.name, p.shape);
  for (const p of qformerParamSpecs(blip2QFormerSpec(config, lm))) out.set(p.name, p.shape);
  for (const p of lm.paramSpecs()) out.set(p.name, p.shape);
  return out;
}

/**
 * Checks that `tensors` holds every parameter of the model with its shape; returns the names it does
 * not use.
 * @throws TensorError `TENSOR_MISSING` / `TENSOR_SHAPE` naming the parameter
 */
export function checkBlip2Tensors(
  config: Blip2Config,
  lm: Blip2LanguageModel,
  tensors: ReadonlyMap<string, HostTensor>,
): string[] {
  const shapes = blip2ParamShapes(config, lm);
  for (const [name, shape] of shapes) {
    const t = tensors.get(name);
    if (!t)
      throw new TensorError('TENSOR_MISSING', name, 'not among the given tensors', fmtShape(shape), 'absent');
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))
      throw new TensorError('TENSOR_SHAPE', name, 'wrong shape', fmtShape(shape), fmtShape(t.shape));
  }
  return [...tensors.keys()].filter((n) => !shapes.has(n));
}

/**
 * Checks that a checkpoint's tensor names include a vision tower and a language model at all (before
 * anything is read), so a Q-Former-only or retrieval checkpoint gets one clear error.
 * @throws Blip2Error `BLIP2_NOT_A_FULL_MODEL`
 */
export function checkFullModel(names: readonly string[], config: Blip2Config): void {
  const missingPart = ['vision_model.', LM_PREFIX].filter((p) => !names.some((n) => n.startsWith(p)));
  if (missingPart.length > 0)
    throw new Blip2Error(
      'BLIP2_NOT_A_FULL_MODEL',
      `the checkpoint has no ${missingPart.map((p) => `${p}*`).join(' and no ')} tensors: it is not a whole ${config.modelType} model (a Q-Former-only or retrieval checkpoint runs as a Q-Former on image_embeds)`,
    );
}

/** Checkpoint names used by a part that reported the complement as `ignored`. */
function usedBy(all: readonly string[], ignored: readonly string[]): string[] {
  const skip = new Set(ignored);
  return all.filter((n) => !skip.has(n));
}

/**
 * Reads exactly the tensors a whole BLIP-2 / InstructBLIP model needs from a checkpoint (HF BLIP-2 or
 * InstructBLIP names), F16/BF16/F64 converted to float32: the vision tower, the Q-Former (with
 * InstructBLIP's text embeddings), `language_projection` and the LM (tied embeddings resolved).
 * @throws Blip2Error `BLIP2_NOT_A_FULL_MODEL` when the checkpoint has no vision tower or no LM at all;
 *   TensorError naming a missing or mis-shaped tensor (expected vs actual), or with `strict` the
 *   first unused one
 */
export async function loadBlip2Tensors(
  checkpoint: Checkpoint,
  config: Blip2Config,
  lm: Blip2LanguageModel,
  options: Blip2LoadOptions = {},
): Promise<LoadedBlip2> {
  const names = checkpoint.names();
  checkFullModel(names, config);
  const layout = detectCheckpointLayout(names);
  const canonicalName = (n: string) => toCanonicalName(layout, n);
  const spec = blip2QFormerSpec(config, lm);
  const vision = await loadVisionTensors(checkpoint, config.vision, { canonicalName });
  const qf = await loadQFormerTensors(
    checkpoint,
    { ...qformerModelConfig(config), languageProjectionOutFeatures: lm.shape.hiddenSize },
    { canonicalName },
  );
  const stored = (canonical: string) => fromCanonicalName(layout, canonical) ?? canonical;
  if (!qf.spec.languageProjection)
    throw new TensorError(
      'TENSOR_MISSING',
      stored('language_projection.weight'),
      'not found in the checkpoint',
      fmtShape([lm.shape.hiddenSize, config.qformer.hiddenSize]),
      'absent',
    );
  if (spec.textPath && !qf.spec.textPath) {
    const name = names.some((n) => canonicalName(n) === 'embeddings.word_embeddings.weight')
      ? 'qformer.encoder.layer.0.intermediate.dense.weight'
      : 'embeddings.word_embeddings.weight';
    throw new TensorError(
      'TENSOR_MISSING',
      stored(name),
      'InstructBLIP needs the Q-Former text path; not found',
      undefined,
      'absent',
    );
  }
  const tensors = new Map<string, HostTensor>(vision.tensors);
  const wanted = new Set(qformerParamSpecs(spec).map((p) => p.name));
  for (const [name, t] of qf.tensors) if (wanted.has(name)) tensors.set(name, t);
  const byCanonical = new Map(names.map((n) => [canonicalName(n), n] as const));
  const qfUsed = [...wanted].map((c) => byCanonical.get(c)).filter((n): n is string => n !== undefined);

  const lmLoaded =
    lm instanceof OptLanguageModel
      ? await lm.loadTensors(checkpoint)
      : await lm.loadTensors(checkpoint, { strict: false });
  for (const [name, t] of lmLoaded.tensors) tensors.set(name, t);
  const tiedHead =
    lm instanceof OptLanguageModel && lm.config.tieWordEmbeddings
      ? `${lm.prefix}${OPT_NAMES.lmHead}`
      : undefined;
  const lmIgnored = lmLoaded.ignored.filter((n) => n !== tiedHead);
  const used = new Set<string>([
    ...usedBy(names, vision.ignored),
    ...qfUsed,
    ...usedBy(
      names.filter((n) => n.startsWith(lm.prefix)),
      lmIgnored,
    ),
  ]);
  const ignored = names.filter((n) => !used.has(n));
  if (options.strict && ignored.length > 0)
    throw new TensorError(
      'TENSOR_UNEXPECTED',
      ignored[0] as string,
      `${ignored.length} checkpoint tensor(s) are not used by the ${config.modelType} model`,
    );
  return { spec, tensors, ignored };
}
