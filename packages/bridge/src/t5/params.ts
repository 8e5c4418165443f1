import { type Checkpoint, type HostTensor, TensorError, fmtShape } from '@qf/io';
import type { LmParamSpec } from '../lm/types.js';
import type { T5Config } from './config.js';

/** BLIP-2's prefix of the language model's tensors. */
export const T5_DEFAULT_PREFIX = 'language_model.';

/**
 * Names that hold the word embeddings in HF T5 checkpoints, in the order they are looked for:
 * `shared`, `encoder.embed_tokens` and `decoder.embed_tokens` are one tied module in HF, and a
 * checkpoint may store any of them (safetensors keeps one name per shared tensor).
 */
export const T5_EMBEDDING_NAMES = [
  'shared.weight',
  'encoder.embed_tokens.weight',
  'decoder.embed_tokens.weight',
] as const;

function attention(out: LmParamSpec[], p: string, cfg: T5Config, relativeBias: boolean): void {
  const inner = cfg.numHeads * cfg.dKv;
  for (const n of ['q', 'k', 'v']) out.push({ name: `${p}${n}.weight`, shape: [inner, cfg.dModel] });
  out.push({ name: `${p}o.weight`, shape: [cfg.dModel, inner] });
  if (relativeBias)
    out.push({
      name: `${p}relative_attention_bias.weight`,
      shape: [cfg.relativeAttentionNumBuckets, cfg.numHeads],
    });
}

function feedForward(out: LmParamSpec[], p: string, cfg: T5Config): void {
  const wi = cfg.isGatedAct ? ['wi_0', 'wi_1'] : ['wi'];
  for (const n of wi) out.push({ name: `${p}DenseReluDense.${n}.weight`, shape: [cfg.dFf, cfg.dModel] });
  out.push({ name: `${p}DenseReluDense.wo.weight`, shape: [cfg.dModel, cfg.dFf] });
  out.push({ name: `${p}layer_norm.weight`, shape: [cfg.dModel] });
}

/**
 * Every tensor T5 reads, with HF names under `prefix` and PyTorch shapes. The word embeddings appear
 * once, as `shared.weight`; `lm_head.weight` only when the embeddings are not tied.
 */
export function t5ParamSpecs(cfg: T5Config, prefix = T5_DEFAULT_PREFIX): LmParamSpec[] {
  const out: LmParamSpec[] = [{ name: `${prefix}shared.weight`, shape: [cfg.vocabSize, cfg.dModel] }];
  for (let i = 0; i < cfg.numLayers; i++) {
    const b = `${prefix}encoder.block.${i}.layer.`;
    attention(out, `${b}0.SelfAttention.`, cfg, i === 0);
    out.push({ name: `${b}0.layer_norm.weight`, shape: [cfg.dModel] });
    feedForward(out, `${b}1.`, cfg);
  }
  out.push({ name: `${prefix}encoder.final_layer_norm.weight`, shape: [cfg.dModel] });
  for (let i = 0; i < cfg.numDecoderLayers; i++) {
    const b = `${prefix}decoder.block.${i}.layer.`;
    attention(out, `${b}0.SelfAttention.`, cfg, i === 0);
    out.push({ name: `${b}0.layer_norm.weight`, shape: [cfg.dModel] });
    attention(out, `${b}1.EncDecAttention.`, cfg, false);
    out.push({ name: `${b}1.layer_norm.weight`, shape: [cfg.dModel] });
    feedForward(out, `${b}2.`, cfg);
  }
  out.push({ name: `${prefix}decoder.final_layer_norm.weight`, shape: [cfg.dModel] });
  if (!cfg.tieWordEmbeddings)
    out.push({ name: `${prefix}lm_head.weight`, shape: [cfg.vocabSize, cfg.dModel] });
  return out;
}

/** Which stored tensor each parameter comes from. */
export interface T5TensorPlan {
  /** Parameter name (as in {@link t5ParamSpecs}) -> the name it is read from. */
  readonly sources: Map<string, string>;
  /**
   * Stored names under the prefix that T5 does not read (tied copies of the embeddings and a tied
   * `lm_head` are not listed: they are the same tensor).
   */
  readonly ignored: string[];
}

/**
 * Resolves the parameters of T5 against the names and shapes a store holds: the embeddings from
 * whichever of {@link T5_EMBEDDING_NAMES} exists, everything else by its own name.
 * @param shapeOf the shape of a stored tensor, or undefined when absent
 * @throws TensorError `TENSOR_MISSING` or `TENSOR_SHAPE` naming the tensor, with expected vs actual
 */
export function planT5Tensors(
  cfg: T5Config,
  names: readonly string[],
  shapeOf: (name: string) => readonly number[] | undefined,
  prefix = T5_DEFAULT_PREFIX,
): T5TensorPlan {
  const sources = new Map<string, string>();
  const embeddings = T5_EMBEDDING_NAMES.map((n) => prefix + n);
  for (const spec of t5ParamSpecs(cfg, prefix)) {
    const isEmbedding = spec.name === `${prefix}shared.weight`;
    const source = isEmbedding ? embeddings.find((n) => shapeOf(n) !== undefined) : spec.name;
    const actual = source === undefined ? undefined : shapeOf(source);
    if (source === undefined || actual === undefined) {
      const what = isEmbedding ? `not found (nor ${embeddings.slice(1).join(' / ')})` : 'not found';
      throw new TensorError('TENSOR_MISSING', spec.name, what, fmtShape(spec.shape), 'absent');
    }
    if (actual.length !== spec.shape.length || actual.some((d, i) => d !== spec.shape[i]))
      throw new TensorError('TENSOR_SHAPE', source, 'wrong shape', fmtShape(spec.shape), fmtShape(actual));
    sources.set(spec.name, source);
  }
  const tied = new Set<string>(embeddings);
  if (cfg.tieWordEmbeddings) tied.add(`${prefix}lm_head.weight`);
  const used = new Set(sources.values());
  const ignored = names.filter((n) => n.startsWith(prefix) && !used.has(n) && !tied.has(n));
  return { sources, ignored };
}

/** T5 tensors read from a checkpoint or resolved from a map. */
export interface LoadedT5Tensors {
  /** Parameter name -> float32 tensor, exactly the names of {@link t5ParamSpecs}. */
  readonly tensors: Map<string, HostTensor>;
  /** See {@link T5TensorPlan.ignored}. */
  readonly ignored: string[];
}

/** Options of {@link loadT5Tensors} / {@link resolveT5Tensors}. */
export interface T5LoadOptions {
  /** Prefix of the LM's names (default `language_model.`; `''` for a bare T5 checkpoint). */
  readonly prefix?: string;
  /** Throw TensorError `TENSOR_UNEXPECTED` on an unused tensor under the prefix (default false). */
  readonly strict?: boolean;
}

function checkStrict(plan: T5TensorPlan, strict: boolean | undefined): void {
  const first = plan.ignored[0];
  if (strict && first !== undefined)
    throw new TensorError(
      'TENSOR_UNEXPECTED',
      first,
      `${plan.ignored.length} tensor(s) under the language model prefix are not used by T5`,
    );
}

/**
 * Reads exactly the tensors T5 needs from a checkpoint (F16/BF16 converted to float32), resolving
 * tied embeddings. Tensors outside the prefix (vision tower, Q-Former) are not touched.
 */
export async function loadT5Tensors(
  checkpoint: Checkpoint,
  cfg: T5Config,
  options: T5LoadOptions = {},
): Promise<LoadedT5Tensors> {
  const plan = planT5Tensors(
    cfg,
    checkpoint.names(),
    (n) => checkpoint.info(n)?.shape,
    options.prefix ?? T5_DEFAULT_PREFIX,
  );
  checkStrict(plan, options.strict);
  const tensors = new Map<string, HostTensor>();
  for (const [name, source] of plan.sources)
    tensors.set(name, await checkpoint.read(source, { float32: true }));
  return { tensors, ignored: plan.ignored };
}

/** {@link loadT5Tensors} over tensors already in memory (e.g. a whole safetensors file). */
export function resolveT5Tensors(
  all: ReadonlyMap<string, HostTensor>,
  cfg: T5Config,
  options: T5LoadOptions = {},
): LoadedT5Tensors {
  const plan = planT5Tensors(
    cfg,
    [...all.keys()],
    (n) => all.get(n)?.shape,
    options.prefix ?? T5_DEFAULT_PREFIX,
  );
  checkStrict(plan, options.strict);
  const tensors = new Map<string, HostTensor>();
  for (const [name, source] of plan.sources) tensors.set(name, all.get(source) as HostTensor);
  return { tensors, ignored: plan.ignored };
}
