import { FieldReader, requireObject } from './fields.js';

/** The BLIP-2 vision tower (HF `Blip2VisionConfig` / `InstructBlipVisionConfig`), camelCase. */
export interface VisionConfig {
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly numHiddenLayers: number;
  readonly numAttentionHeads: number;
  readonly imageSize: number;
  readonly patchSize: number;
  /** Only exact (erf) GELU is supported. */
  readonly hiddenAct: 'gelu';
  readonly layerNormEps: number;
  readonly attentionDropout: number;
  readonly initializerRange: number;
  /** Whether the fused qkv projection has q and v biases. */
  readonly qkvBias: boolean;
}

/** HF `Blip2VisionConfig` defaults (transformers 4.47; ViT-g/14 at 224 px). */
export const VISION_DEFAULTS: VisionConfig = Object.freeze({
  hiddenSize: 1408,
  intermediateSize: 6144,
  numHiddenLayers: 39,
  numAttentionHeads: 16,
  imageSize: 224,
  patchSize: 14,
  hiddenAct: 'gelu',
  layerNormEps: 1e-6,
  attentionDropout: 0,
  initializerRange: 1e-10,
  qkvBias: true,
});

/** Parses a `vision_config` section with HF defaults; bad values throw ConfigError naming the field. */
export function parseVisionConfig(json: unknown, prefix = 'vision_config'): VisionConfig {
  const d = VISION_DEFAULTS;
  const r: FieldReader = new FieldReader(requireObject(json, prefix), prefix);
  const hiddenSize = r.int('hidden_size', d.hiddenSize);
  const numAttentionHeads = r.int('num_attention_heads', d.numAttentionHeads);
  if (hiddenSize % numAttentionHeads !== 0) {
    r.fail(
      'num_attention_heads',
      `hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numAttentionHeads}`,
    );
  }
  const imageSize = r.int('image_size', d.imageSize);
  const patchSize = r.int('patch_size', d.patchSize);
  if (patchSize > imageSize) {
    r.fail('patch_size', `expected at most image_size ${imageSize}, got ${patchSize}`);
  }
  return {
    hiddenSize,
    intermediateSize: r.int('intermediate_size', d.intermediateSize),
    numHiddenLayers: r.int('num_hidden_layers', d.numHiddenLayers, 0),
    numAttentionHeads,
    imageSize,
    patchSize,
    hiddenAct: r.oneOf('hidden_act', ['gelu'], d.hiddenAct),
    layerNormEps: r.number('layer_norm_eps', d.layerNormEps, 0, 1, true),
    attentionDropout: r.number('attention_dropout', d.attentionDropout, 0, 1),
    initializerRange: r.number('initializer_range', d.initializerRange, 0, Number.POSITIVE_INFINITY),
    qkvBias: r.bool('qkv_bias', d.qkvBias),
  };
}

/** The HF JSON (snake_case) of a vision config, without `model_type`. */
export function visionConfigToJson(c: VisionConfig): Record<string, unknown> {
  return {
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numHiddenLayers,
    num_attention_heads: c.numAttentionHeads,
    image_size: c.imageSize,
    patch_size: c.patchSize,
    hidden_act: c.hiddenAct,
    layer_norm_eps: c.layerNormEps,
    attention_dropout: c.attentionDropout,
    initializer_range: c.initializerRange,
    qkv_bias: c.qkvBias,
  };
}
