import { FieldReader, requireObject } from './fields.js';

/** The Q-Former (HF `Blip2QFormerConfig` / `InstructBlipQFormerConfig`), camelCase. */
export interface QFormerConfig {
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly numHiddenLayers: number;
  readonly numAttentionHeads: number;
  readonly intermediateSize: number;
  /** Only exact (erf) GELU is supported. */
  readonly hiddenAct: 'gelu';
  readonly hiddenDropoutProb: number;
  readonly attentionProbsDropoutProb: number;
  readonly maxPositionEmbeddings: number;
  readonly initializerRange: number;
  readonly layerNormEps: number;
  /** Padding token id of the word embeddings, or null when the config sets none. */
  readonly padTokenId: number | null;
  /** Only absolute position embeddings are supported. */
  readonly positionEmbeddingType: 'absolute';
  /** Layer i has cross-attention iff `i % crossAttentionFrequency == 0`. */
  readonly crossAttentionFrequency: number;
  /** Width of the image features the cross-attention reads. */
  readonly encoderHiddenSize: number;
  /** Whether the Q-Former has the text path (word/position embeddings, text FFN). */
  readonly useQformerTextInput: boolean;
}

/** HF `Blip2QFormerConfig` defaults (transformers 4.47). */
export const QFORMER_DEFAULTS: QFormerConfig = Object.freeze({
  vocabSize: 30522,
  hiddenSize: 768,
  numHiddenLayers: 12,
  numAttentionHeads: 12,
  intermediateSize: 3072,
  hiddenAct: 'gelu',
  hiddenDropoutProb: 0.1,
  attentionProbsDropoutProb: 0.1,
  maxPositionEmbeddings: 512,
  initializerRange: 0.02,
  layerNormEps: 1e-12,
  padTokenId: 0,
  positionEmbeddingType: 'absolute',
  crossAttentionFrequency: 2,
  encoderHiddenSize: 1408,
  useQformerTextInput: false,
});

/** Overrides of {@link parseQFormerConfig} that a parent config imposes. */
export interface QFormerParseOptions {
  /** Section name used in error messages (`qformer_config`, or `''` for a bare Q-Former config). */
  readonly prefix?: string;
  /** Default for fields the JSON leaves out (e.g. `useQformerTextInput: true` for InstructBLIP). */
  readonly defaults?: Partial<QFormerConfig>;
}

/**
 * Parses a Q-Former config section (HF snake_case JSON) with HF defaults and validates it before
 * anything else happens. A bad value throws ConfigError naming the field, e.g.
 * `qformer_config.num_attention_heads: hidden_size 64 is not divisible by num_attention_heads 5`.
 */
export function parseQFormerConfig(json: unknown, options: QFormerParseOptions = {}): QFormerConfig {
  const prefix = options.prefix ?? '';
  const d: QFormerConfig = { ...QFORMER_DEFAULTS, ...options.defaults };
  const r: FieldReader = new FieldReader(requireObject(json, prefix), prefix);
  const hiddenSize = r.int('hidden_size', d.hiddenSize);
  const numAttentionHeads = r.int('num_attention_heads', d.numAttentionHeads);
  if (hiddenSize % numAttentionHeads !== 0) {
    r.fail(
      'num_attention_heads',
      `hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numAttentionHeads}`,
    );
  }
  const vocabSize = r.int('vocab_size', d.vocabSize);
  const padTokenId = r.intOrNull('pad_token_id', d.padTokenId);
  if (padTokenId !== null && padTokenId >= vocabSize) {
    r.fail(
      'pad_token_id',
      `expected an id in [0, ${vocabSize - 1}] (vocab_size ${vocabSize}), got ${padTokenId}`,
    );
  }
  return {
    vocabSize,
    hiddenSize,
    numHiddenLayers: r.int('num_hidden_layers', d.numHiddenLayers),
    numAttentionHeads,
    intermediateSize: r.int('intermediate_size', d.intermediateSize),
    hiddenAct: r.oneOf('hidden_act', ['gelu'], d.hiddenAct),
    hiddenDropoutProb: r.number('hidden_dropout_prob', d.hiddenDropoutProb, 0, 1),
    attentionProbsDropoutProb: r.number('attention_probs_dropout_prob', d.attentionProbsDropoutProb, 0, 1),
    maxPositionEmbeddings: r.int('max_position_embeddings', d.maxPositionEmbeddings),
    initializerRange: r.number('initializer_range', d.initializerRange, 0, Number.POSITIVE_INFINITY),
    layerNormEps: r.number('layer_norm_eps', d.layerNormEps, 0, 1, true),
    padTokenId,
    positionEmbeddingType: r.oneOf('position_embedding_type', ['absolute'], d.positionEmbeddingType),
    crossAttentionFrequency: r.int('cross_attention_frequency', d.crossAttentionFrequency),
    encoderHiddenSize: r.int('encoder_hidden_size', d.encoderHiddenSize),
    useQformerTextInput: r.bool('use_qformer_text_input', d.useQformerTextInput),
  };
}

/** The HF JSON (snake_case) of a Q-Former config, without `model_type`. */
export function qformerConfigToJson(c: QFormerConfig): Record<string, unknown> {
  return {
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    num_hidden_layers: c.numHiddenLayers,
    num_attention_heads: c.numAttentionHeads,
    intermediate_size: c.intermediateSize,
    hidden_act: c.hiddenAct,
    hidden_dropout_prob: c.hiddenDropoutProb,
    attention_probs_dropout_prob: c.attentionProbsDropoutProb,
    max_position_embeddings: c.maxPositionEmbeddings,
    initializer_range: c.initializerRange,
    layer_norm_eps: c.layerNormEps,
    pad_token_id: c.padTokenId,
    position_embedding_type: c.positionEmbeddingType,
    cross_attention_frequency: c.crossAttentionFrequency,
    encoder_hidden_size: c.encoderHiddenSize,
    use_qformer_text_input: c.useQformerTextInput,
  };
}
