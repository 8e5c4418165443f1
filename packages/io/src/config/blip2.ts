import { ConfigError } from '../errors.js';
import { FieldReader, isPlainObject, requireObject, showValue } from './fields.js';
import { type QFormerConfig, parseQFormerConfig } from './qformer.js';
import { type TextConfig, isDecoderOnlyLm, parseTextConfig } from './text.js';
import { type VisionConfig, parseVisionConfig } from './vision.js';

/** A whole BLIP-2 / InstructBLIP model (HF `Blip2Config` / `InstructBlipConfig`), camelCase. */
export interface Blip2Config {
  readonly modelType: 'blip-2' | 'instructblip';
  /** Number of learned query tokens (HF default 32). */
  readonly numQueryTokens: number;
  /** ITC embedding width of the retrieval heads (HF default 256; unused by InstructBLIP). */
  readonly imageTextHiddenSize: number;
  /** Id of the `<image>` placeholder token in LM inputs, or null (HF default). */
  readonly imageTokenIndex: number | null;
  readonly initializerRange: number;
  readonly initializerFactor: number;
  /** The Q-Former; its `encoderHiddenSize` equals `vision.hiddenSize`. */
  readonly qformer: QFormerConfig;
  readonly vision: VisionConfig;
  /** The language model, or undefined when the JSON has no `text_config` (HF would assume OPT). */
  readonly text: TextConfig | undefined;
  /** True for a causal LM (OPT...), false for an encoder-decoder LM (T5...). */
  readonly useDecoderOnlyLanguageModel: boolean;
  /** The original JSON. */
  readonly raw: Record<string, unknown>;
}

/**
 * A bare Q-Former config (`model_type` `blip_2_qformer` or `instructblip_qformer`), optionally with the
 * extra keys `num_query_tokens`, `image_text_hidden_size` and `language_projection_out_features` that
 * describe the heads around it (as in golden `public_small/config.json`).
 */
export interface QFormerStandaloneConfig {
  readonly modelType: 'blip_2_qformer' | 'instructblip_qformer';
  readonly qformer: QFormerConfig;
  /** `num_query_tokens`, default 32. */
  readonly numQueryTokens: number;
  /** `image_text_hidden_size` when given. */
  readonly imageTextHiddenSize: number | undefined;
  /** `language_projection_out_features` when given. */
  readonly languageProjectionOutFeatures: number | undefined;
  /** The original JSON. */
  readonly raw: Record<string, unknown>;
}

/** Any config {@link parseModelConfig} understands; discriminate on `modelType` (or use {@link isBlip2Config}). */
export type ModelConfig = Blip2Config | QFormerStandaloneConfig;

/** True for a whole-model config (`blip-2` / `instructblip`). */
export function isBlip2Config(c: ModelConfig): c is Blip2Config {
  return c.modelType === 'blip-2' || c.modelType === 'instructblip';
}

const BLIP2_TYPES = ['blip-2', 'instructblip'] as const;
const QFORMER_TYPES = ['blip_2_qformer', 'instructblip_qformer'] as const;

/**
 * Parses an HF `config.json` of a `blip-2` or `instructblip` model. Sections default as in HF. The
 * Q-Former's `encoder_hidden_size` defaults to `vision_config.hidden_size` and must equal it when
 * given; InstructBLIP's Q-Former always has its text path (`useQformerTextInput` true).
 */
export function parseBlip2Config(json: unknown): Blip2Config {
  const raw = requireObject(json, '');
  const r: FieldReader = new FieldReader(raw);
  const modelType = r.has('model_type') ? r.oneOf('model_type', BLIP2_TYPES, 'blip-2') : 'blip-2';
  const instruct = modelType === 'instructblip';
  const sectionOf = (key: string): unknown => (raw[key] === undefined || raw[key] === null ? {} : raw[key]);
  const vision = parseVisionConfig(sectionOf('vision_config'));
  const qformerJson = requireObject(sectionOf('qformer_config'), 'qformer_config');
  const qformer = parseQFormerConfig(qformerJson, {
    prefix: 'qformer_config',
    defaults: { encoderHiddenSize: vision.hiddenSize, ...(instruct ? { useQformerTextInput: true } : {}) },
  });
  if (qformer.encoderHiddenSize !== vision.hiddenSize) {
    throw new ConfigError(
      'qformer_config.encoder_hidden_size',
      `must equal vision_config.hidden_size (expected ${vision.hiddenSize}, got ${qformer.encoderHiddenSize})`,
    );
  }
  const text =
    raw.text_config === undefined || raw.text_config === null ? undefined : parseTextConfig(raw.text_config);
  const declared = r.has('use_decoder_only_language_model')
    ? r.bool('use_decoder_only_language_model', true)
    : undefined;
  return {
    modelType,
    numQueryTokens: r.int('num_query_tokens', 32),
    imageTextHiddenSize: r.int('image_text_hidden_size', 256),
    imageTokenIndex: r.intOrNull('image_token_index', null),
    initializerRange: r.number('initializer_range', 0.02, 0, Number.POSITIVE_INFINITY),
    initializerFactor: r.number('initializer_factor', 1, 0, Number.POSITIVE_INFINITY),
    qformer: instruct ? { ...qformer, useQformerTextInput: true } : qformer,
    vision,
    text,
    useDecoderOnlyLanguageModel: isDecoderOnlyLm(text?.modelType, declared),
    raw,
  };
}

/**
 * Parses a bare Q-Former config (`blip_2_qformer` / `instructblip_qformer`) plus the optional head
 * sizes `num_query_tokens` (default 32), `image_text_hidden_size` and `language_projection_out_features`.
 */
export function parseQFormerStandalone(json: unknown): QFormerStandaloneConfig {
  const raw = requireObject(json, '');
  const r: FieldReader = new FieldReader(raw);
  const modelType = r.oneOf('model_type', QFORMER_TYPES, 'blip_2_qformer');
  const instruct = modelType === 'instructblip_qformer';
  const qformer = parseQFormerConfig(raw, instruct ? { defaults: { useQformerTextInput: true } } : {});
  return {
    modelType,
    qformer: instruct ? { ...qformer, useQformerTextInput: true } : qformer,
    numQueryTokens: r.int('num_query_tokens', 32),
    imageTextHiddenSize: r.has('image_text_hidden_size') ? r.int('image_text_hidden_size', 0) : undefined,
    languageProjectionOutFeatures: r.has('language_projection_out_features')
      ? r.int('language_projection_out_features', 0)
      : undefined,
    raw,
  };
}

/**
 * Parses any supported `config.json`: `blip-2` / `instructblip` (a {@link Blip2Config}) or a bare
 * `blip_2_qformer` / `instructblip_qformer` (a {@link QFormerStandaloneConfig}). Without `model_type`
 * a JSON with `qformer_config` is taken as `blip-2`. Anything else throws ConfigError on `model_type`.
 */
export function parseModelConfig(json: unknown): ModelConfig {
  const raw = requireObject(json, '');
  const type = raw.model_type;
  if (type === undefined && isPlainObject(raw.qformer_config)) return parseBlip2Config(raw);
  if ((BLIP2_TYPES as readonly unknown[]).includes(type)) return parseBlip2Config(raw);
  if ((QFORMER_TYPES as readonly unknown[]).includes(type)) return parseQFormerStandalone(raw);
  throw new ConfigError(
    'model_type',
    `expected one of ${[...BLIP2_TYPES, ...QFORMER_TYPES].map((t) => `"${t}"`).join(', ')}, got ${showValue(type)}`,
  );
}
