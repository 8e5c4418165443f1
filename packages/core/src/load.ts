import { type Checkpoint, type HostTensor, type QFormerConfig, TensorError, fmtShape } from '@qf/io';
import { type ParamSpec, type QFormerModelSpec, qformerParamSpecs } from './spec.js';

/** What the config says about a Q-Former model, before looking at a checkpoint. */
export interface QFormerModelConfig {
  readonly qformer: QFormerConfig;
  readonly numQueryTokens: number;
  /** ITC width D, when the config names one. */
  readonly imageTextHiddenSize?: number | undefined;
  /** Language projection width, when the config names one (e.g. the LM's hidden size). */
  readonly languageProjectionOutFeatures?: number | undefined;
}

/** Options of {@link loadQFormerTensors}. */
export interface LoadOptions {
  /** Throw on checkpoint tensors the Q-Former does not use (default: report them in `ignored`). */
  readonly strict?: boolean;
  /**
   * Maps a checkpoint name to its canonical (HF Blip2) name, or undefined to ignore it.
   * Defaults to the identity.
   */
  readonly canonicalName?: (name: string) => string | undefined;
}

/** Result of {@link loadQFormerTensors}. */
export interface LoadedQFormer {
  readonly spec: QFormerModelSpec;
  /** Canonical name -> float32 tensor, exactly the tensors of `qformerParamSpecs(spec)`. */
  readonly tensors: Map<string, HostTensor>;
  /** Checkpoint tensors that were not loaded (vision tower, LM, unused heads...). */
  readonly ignored: string[];
}

/**
 * Reads the Q-Former parts of a checkpoint. Optional parts (text path, retrieval heads, language
 * projection) are loaded when the checkpoint has them; every tensor of a part that is present must
 * exist with the expected shape, or a TensorError names it.
 */
export async function loadQFormerTensors(
  checkpoint: Checkpoint,
  config: QFormerModelConfig,
  options: LoadOptions = {},
): Promise<LoadedQFormer> {
  const byCanonical = canonicalIndex(checkpoint, options.canonicalName);
  const shapeOf = (canonical: string) => {
    const name = byCanonical.get(canonical);
    return name === undefined ? undefined : checkpoint.info(name)?.shape;
  };
  const has = (n: string) => byCanonical.has(n);
  const h = config.qformer.hiddenSize;

  const textPath =
    has('embeddings.word_embeddings.weight') && has('qformer.encoder.layer.0.intermediate.dense.weight');
  let retrievalHeads: QFormerModelSpec['retrievalHeads'];
  if (has('itm_head.weight') && has('vision_projection.weight') && has('text_projection.weight')) {
    const d = shapeOf('vision_projection.weight')?.[0] ?? 0;
    if (config.imageTextHiddenSize !== undefined && config.imageTextHiddenSize !== d) {
      throw new TensorError(
        'TENSOR_SHAPE',
        'vision_projection.weight',
        'does not match image_text_hidden_size',
        fmtShape([config.imageTextHiddenSize, h]),
        fmtShape(shapeOf('vision_projection.weight') ?? []),
      );
    }
    retrievalHeads = { imageTextHiddenSize: d };
  }
  let languageProjection: QFormerModelSpec['languageProjection'];
  if (has('language_projection.weight')) {
    const l = config.languageProjectionOutFeatures ?? shapeOf('language_projection.weight')?.[0] ?? 0;
    languageProjection = { outFeatures: l };
  }
  const spec: QFormerModelSpec = {
    qformer: config.qformer,
    numQueryTokens: config.numQueryTokens,
    textPath,
    retrievalHeads,
    languageProjection,
  };

  const tensors = new Map<string, HostTensor>();
  for (const p of qformerParamSpecs(spec))
    tensors.set(p.name, await readParamTensor(checkpoint, byCanonical, p));
  const ignored = unusedNames(checkpoint, byCanonical, tensors.keys());
  if (options.strict && ignored.length > 0) {
    throw new TensorError(
      'TENSOR_UNEXPECTED',
      ignored[0] ?? '',
      `${ignored.length} checkpoint tensor(s) are not used by the Q-Former`,
    );
  }
  return { spec, tensors, ignored };
}

/**
 * Checkpoint name by canonical name, for every checkpoint tensor that `toCanonical` maps (identity
 * by default). Shared by the Q-Former and vision loaders.
 */
export function canonicalIndex(
  checkpoint: Checkpoint,
  toCanonical: (name: string) => string | undefined = (n) => n,
): Map<string, string> {
  const byCanonical = new Map<string, string>();
  for (const name of checkpoint.names()) {
    const canonical = toCanonical(name);
    if (canonical !== undefined) byCanonical.set(canonical, name);
  }
  return byCanonical;
}

/**
 * Reads the tensor of one parameter as float32 (F16/BF16/F64 converted), after checking that the
 * checkpoint has it with the expected shape.
 * @throws TensorError `TENSOR_MISSING` or `TENSOR_SHAPE` naming it, with expected vs actual shape.
 */
export async function readParamTensor(
  checkpoint: Checkpoint,
  byCanonical: ReadonlyMap<string, string>,
  p: Pick<ParamSpec, 'name' | 'shape'>,
): Promise<HostTensor> {
  const name = byCanonical.get(p.name);
  if (name === undefined)
    throw new TensorError(
      'TENSOR_MISSING',
      p.name,
      'not found in the checkpoint',
      fmtShape(p.shape),
      'absent',
    );
  const actual = checkpoint.info(name)?.shape ?? [];
  if (actual.length !== p.shape.length || actual.some((d, i) => d !== p.shape[i])) {
    throw new TensorError('TENSOR_SHAPE', name, 'wrong shape', fmtShape(p.shape), fmtShape(actual));
  }
  return checkpoint.read(name, { float32: true });
}

/** Checkpoint names whose canonical name is not in `used`, in checkpoint order. */
export function unusedNames(
  checkpoint: Checkpoint,
  byCanonical: ReadonlyMap<string, string>,
  used: Iterable<string>,
): string[] {
  const usedNames = new Set([...used].map((c) => byCanonical.get(c)));
  return checkpoint.names().filter((n) => !usedNames.has(n));
}
