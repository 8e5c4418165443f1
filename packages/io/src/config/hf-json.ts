import { type Blip2Config, type ModelConfig, isBlip2Config } from './blip2.js';
import { isPlainObject } from './fields.js';
import { qformerConfigToJson } from './qformer.js';
import { textConfigToJson } from './text.js';
import { visionConfigToJson } from './vision.js';

function section(raw: Record<string, unknown>, key: string): Record<string, unknown> {
  const v = raw[key];
  return isPlainObject(v) ? v : {};
}

function blip2ToJson(c: Blip2Config): Record<string, unknown> {
  const instruct = c.modelType === 'instructblip';
  const qformer: Record<string, unknown> = {
    ...section(c.raw, 'qformer_config'),
    ...qformerConfigToJson(c.qformer),
    model_type: instruct ? 'instructblip_qformer' : 'blip_2_qformer',
  };
  if (instruct) delete qformer.use_qformer_text_input;
  const out: Record<string, unknown> = {
    ...c.raw,
    model_type: c.modelType,
    num_query_tokens: c.numQueryTokens,
    image_token_index: c.imageTokenIndex,
    initializer_range: c.initializerRange,
    initializer_factor: c.initializerFactor,
    use_decoder_only_language_model: c.useDecoderOnlyLanguageModel,
    qformer_config: qformer,
    vision_config: {
      ...section(c.raw, 'vision_config'),
      ...visionConfigToJson(c.vision),
      model_type: instruct ? 'instructblip_vision_model' : 'blip_2_vision_model',
    },
  };
  if (!instruct) out.image_text_hidden_size = c.imageTextHiddenSize;
  if (c.text !== undefined) out.text_config = textConfigToJson(c.text);
  else delete out.text_config;
  return out;
}

/**
 * The HF `config.json` object of a parsed config, loadable by HF transformers (`Blip2Config`,
 * `InstructBlipConfig` or `Blip2QFormerConfig`): `model_type` plus nested `qformer_config`,
 * `vision_config` and `text_config`. Keys of the original JSON that this package does not model are
 * kept; modelled ones are written from the parsed values.
 */
export function toHfConfigJson(config: ModelConfig): Record<string, unknown> {
  if (isBlip2Config(config)) return blip2ToJson(config);
  const out: Record<string, unknown> = {
    ...config.raw,
    ...qformerConfigToJson(config.qformer),
    model_type: config.modelType,
    num_query_tokens: config.numQueryTokens,
  };
  if (config.modelType === 'instructblip_qformer') delete out.use_qformer_text_input;
  if (config.imageTextHiddenSize !== undefined) out.image_text_hidden_size = config.imageTextHiddenSize;
  if (config.languageProjectionOutFeatures !== undefined) {
    out.language_projection_out_features = config.languageProjectionOutFeatures;
  }
  return out;
}

/**
 * Config keys HF declares as floats. Newer transformers validate config fields strictly and reject
 * an int (`1`) where a float is declared, so these are written with a decimal point (`1.0`).
 */
const HF_FLOAT_KEYS = new Set([
  'initializer_factor',
  'initializer_range',
  'layer_norm_eps',
  'layer_norm_epsilon',
  'hidden_dropout_prob',
  'attention_probs_dropout_prob',
  'attention_dropout',
  'dropout',
  'dropout_rate',
  'activation_dropout',
  'layerdrop',
  'classifier_dropout',
]);

/** Marks an integer-valued float so the text can be patched to `N.0` after JSON.stringify. */
const FLOAT_MARK = '\u0000float:';

/**
 * `config.json` text for an HF config object: `JSON.stringify` with 2-space indent, except that
 * integer values of float-typed keys (see above) are written as `1.0`, as Python's json does.
 */
export function stringifyHfConfig(config: Record<string, unknown>): string {
  const text = JSON.stringify(
    config,
    (key, value) =>
      // only plain digits get `.0`; a large integer JSON writes with an exponent (1e+21) is a float already
      HF_FLOAT_KEYS.has(key) && Number.isInteger(value) && /^-?\d+$/.test(String(value))
        ? `${FLOAT_MARK}${value}`
        : value,
    2,
  );
  return `${text.replace(/"\\u0000float:(-?\d+)"/g, '$1.0')}\n`;
}
