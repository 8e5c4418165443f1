import type { QFormerConfig } from '@qf/io';
import { hasCrossAttention } from './qformer/shape.js';

/**
 * Which parts a Q-Former model has, with their sizes. Derived from a config plus what a checkpoint
 * holds (e.g. a Blip2ForConditionalGeneration checkpoint may have no text path or retrieval heads).
 */
export interface QFormerModelSpec {
  readonly qformer: QFormerConfig;
  /** Q, the number of learned query tokens. */
  readonly numQueryTokens: number;
  /** Word/position embeddings and the text FFN (`intermediate`/`output`) in every layer. */
  readonly textPath: boolean;
  /** ITC projections and the ITM head, with the ITC embedding width D. */
  readonly retrievalHeads?: { readonly imageTextHiddenSize: number } | undefined;
  /** The projector to the language model, with its output width. */
  readonly languageProjection?: { readonly outFeatures: number } | undefined;
}

/**
 * What a parameter is, for init. `conv.weight` is a convolution kernel [out, in, kh, kw] (fan-in
 * `in * kh * kw`), e.g. the vision tower's patch embedding.
 */
export type ParamKind =
  | 'linear.weight'
  | 'conv.weight'
  | 'bias'
  | 'norm.weight'
  | 'norm.bias'
  | 'embedding'
  | 'query_tokens';

/** One parameter: canonical name, shape, kind. */
export interface ParamSpec {
  readonly name: string;
  readonly shape: readonly number[];
  readonly kind: ParamKind;
}

function linear(out: ParamSpec[], prefix: string, outF: number, inF: number): void {
  out.push({ name: `${prefix}.weight`, shape: [outF, inF], kind: 'linear.weight' });
  out.push({ name: `${prefix}.bias`, shape: [outF], kind: 'bias' });
}

function norm(out: ParamSpec[], prefix: string, h: number): void {
  out.push({ name: `${prefix}.weight`, shape: [h], kind: 'norm.weight' });
  out.push({ name: `${prefix}.bias`, shape: [h], kind: 'norm.bias' });
}

function attention(out: ParamSpec[], prefix: string, h: number, kvIn: number): void {
  linear(out, `${prefix}.attention.query`, h, h);
  linear(out, `${prefix}.attention.key`, h, kvIn);
  linear(out, `${prefix}.attention.value`, h, kvIn);
  linear(out, `${prefix}.output.dense`, h, h);
  norm(out, `${prefix}.output.LayerNorm`, h);
}

function ffn(out: ParamSpec[], prefix: string, suffix: string, h: number, inter: number): void {
  linear(out, `${prefix}.intermediate${suffix}.dense`, inter, h);
  linear(out, `${prefix}.output${suffix}.dense`, h, inter);
  norm(out, `${prefix}.output${suffix}.LayerNorm`, h);
}

/**
 * Every parameter of a Q-Former model (canonical HF names and PyTorch shapes), in a stable order.
 */
export function qformerParamSpecs(spec: QFormerModelSpec): ParamSpec[] {
  const c = spec.qformer;
  const h = c.hiddenSize;
  const out: ParamSpec[] = [
    { name: 'query_tokens', shape: [1, spec.numQueryTokens, h], kind: 'query_tokens' },
  ];
  if (spec.textPath) {
    out.push({ name: 'embeddings.word_embeddings.weight', shape: [c.vocabSize, h], kind: 'embedding' });
    out.push({
      name: 'embeddings.position_embeddings.weight',
      shape: [c.maxPositionEmbeddings, h],
      kind: 'embedding',
    });
  }
  norm(out, 'qformer.layernorm', h);
  for (let i = 0; i < c.numHiddenLayers; i++) {
    const p = `qformer.encoder.layer.${i}`;
    attention(out, `${p}.attention`, h, h);
    if (hasCrossAttention(c, i)) attention(out, `${p}.crossattention`, h, c.encoderHiddenSize);
    if (spec.textPath) ffn(out, p, '', h, c.intermediateSize);
    ffn(out, p, '_query', h, c.intermediateSize);
  }
  if (spec.retrievalHeads) {
    const d = spec.retrievalHeads.imageTextHiddenSize;
    linear(out, 'vision_projection', d, h);
    linear(out, 'text_projection', d, h);
    linear(out, 'itm_head', 2, h);
  }
  if (spec.languageProjection) linear(out, 'language_projection', spec.languageProjection.outFeatures, h);
  return out;
}
