import { type Checkpoint, type HostTensor, TensorError, fmtShape } from '@qf/io';
import type { LmParamSpec } from '../lm/types.js';
import type { OptConfig } from './config.js';

/** Prefix of the LM's tensors in BLIP-2 / InstructBLIP checkpoints. */
export const LM_PREFIX = 'language_model.';

/** HF names of the OPT tensors, relative to {@link LM_PREFIX}. */
export const OPT_NAMES = {
  embedTokens: 'model.decoder.embed_tokens.weight',
  embedPositions: 'model.decoder.embed_positions.weight',
  projectIn: 'model.decoder.project_in.weight',
  projectOut: 'model.decoder.project_out.weight',
  finalLayerNorm: 'model.decoder.final_layer_norm.',
  layer: (i: number) => `model.decoder.layers.${i}.`,
  lmHead: 'lm_head.weight',
} as const;

/** HF OPT's learned positions are stored with this offset (`OPTLearnedPositionalEmbedding`). */
export const OPT_POSITION_OFFSET = 2;

/** Whether the decoder has `project_in` / `project_out` (`word_embed_proj_dim != hidden_size`). */
export function hasProjections(c: OptConfig): boolean {
  return c.wordEmbedProjDim !== c.hiddenSize;
}

/** Whether the decoder applies `final_layer_norm` after the last layer. */
export function hasFinalLayerNorm(c: OptConfig): boolean {
  return c.doLayerNormBefore && !c.removeFinalLayerNorm;
}

/**
 * Every tensor the OPT forward reads, with `prefix` (default `language_model.`) and PyTorch shapes.
 * With tied embeddings (the default) `lm_head.weight` is not listed: the head reads `embed_tokens`.
 */
export function optParamSpecs(c: OptConfig, prefix = LM_PREFIX): LmParamSpec[] {
  const h = c.hiddenSize;
  const specs: LmParamSpec[] = [];
  const add = (name: string, shape: number[]) => specs.push({ name: prefix + name, shape });
  const linear = (name: string, out: number, inF: number) => {
    add(`${name}.weight`, [out, inF]);
    if (c.enableBias) add(`${name}.bias`, [out]);
  };
  const norm = (name: string) => {
    if (!c.layerNormElementwiseAffine) return;
    add(`${name}weight`, [h]);
    add(`${name}bias`, [h]);
  };
  add(OPT_NAMES.embedTokens, [c.vocabSize, c.wordEmbedProjDim]);
  add(OPT_NAMES.embedPositions, [c.maxPositionEmbeddings + OPT_POSITION_OFFSET, h]);
  if (hasProjections(c)) {
    add(OPT_NAMES.projectIn, [h, c.wordEmbedProjDim]);
    add(OPT_NAMES.projectOut, [c.wordEmbedProjDim, h]);
  }
  for (let i = 0; i < c.numHiddenLayers; i++) {
    const p = OPT_NAMES.layer(i);
    for (const proj of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) linear(`${p}self_attn.${proj}`, h, h);
    norm(`${p}self_attn_layer_norm.`);
    linear(`${p}fc1`, c.ffnDim, h);
    linear(`${p}fc2`, h, c.ffnDim);
    norm(`${p}final_layer_norm.`);
  }
  if (hasFinalLayerNorm(c)) norm(OPT_NAMES.finalLayerNorm);
  if (!c.tieWordEmbeddings) add(OPT_NAMES.lmHead, [c.vocabSize, c.wordEmbedProjDim]);
  return specs;
}

/** Result of {@link loadOptTensors}. */
export interface LoadedOptTensors {
  /** Exactly the tensors of {@link optParamSpecs}, float32. */
  readonly tensors: Map<string, HostTensor>;
  /**
   * With tied embeddings: which stored tensor filled `embed_tokens` (`embed_tokens`, or `lm_head`
   * when the checkpoint stores only the head). `undefined` for untied models.
   */
  readonly tiedFrom: 'embed_tokens' | 'lm_head' | undefined;
  /** Checkpoint tensors under `prefix` that the LM does not read (e.g. a tied `lm_head.weight`). */
  readonly ignored: string[];
}

function checkShape(checkpoint: Checkpoint, name: string, expected: readonly number[]): void {
  const actual = checkpoint.info(name)?.shape ?? [];
  if (actual.length !== expected.length || actual.some((d, i) => d !== expected[i]))
    throw new TensorError('TENSOR_SHAPE', name, 'wrong shape', fmtShape(expected), fmtShape(actual));
}

/**
 * Reads the OPT tensors of a checkpoint (HF names with `prefix`), float32. Tied embeddings: a
 * checkpoint may store `embed_tokens`, `lm_head`, or both (then `embed_tokens` is used, as HF ties the
 * head to it).
 * @throws TensorError `TENSOR_MISSING` / `TENSOR_SHAPE` naming the tensor, expected vs actual shape
 */
export async function loadOptTensors(
  checkpoint: Checkpoint,
  config: OptConfig,
  prefix = LM_PREFIX,
): Promise<LoadedOptTensors> {
  const present = new Set(checkpoint.names());
  const tensors = new Map<string, HostTensor>();
  const embedName = prefix + OPT_NAMES.embedTokens;
  const headName = prefix + OPT_NAMES.lmHead;
  let tiedFrom: LoadedOptTensors['tiedFrom'];
  const used = new Set<string>();
  for (const spec of optParamSpecs(config, prefix)) {
    let source = spec.name;
    if (spec.name === embedName && config.tieWordEmbeddings) {
      tiedFrom = present.has(embedName) ? 'embed_tokens' : present.has(headName) ? 'lm_head' : undefined;
      if (tiedFrom === 'lm_head') source = headName;
    }
    if (!present.has(source)) {
      const alt = spec.name === embedName && config.tieWordEmbeddings ? ` (or its tied ${headName})` : '';
      throw new TensorError(
        'TENSOR_MISSING',
        spec.name,
        `not found in the checkpoint${alt}`,
        fmtShape(spec.shape),
        'absent',
      );
    }
    checkShape(checkpoint, source, spec.shape);
    tensors.set(spec.name, await checkpoint.read(source, { float32: true }));
    used.add(source);
  }
  const ignored = [...present].filter((n) => n.startsWith(prefix) && !used.has(n));
  return { tensors, tiedFrom, ignored };
}
