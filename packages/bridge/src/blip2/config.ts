import { type Blip2Config, ConfigError, isBlip2Config, parseModelConfig } from '@qf/io';
import { OptLanguageModel } from '../opt/lm.js';
import { T5LanguageModel } from '../t5/model.js';

/** A short JSON preview of a config value for error messages. */
function previewValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** The language models a whole BLIP-2 / InstructBLIP model can have here. */
export type Blip2LanguageModel = OptLanguageModel | T5LanguageModel;

/**
 * A whole-model config from parsed or raw `config.json` content.
 * @throws ConfigError on `model_type` for a bare Q-Former config (`blip_2_qformer`...), on
 *   `text_config` when it is absent, and on any bad field.
 */
export function blip2Config(config: Blip2Config | unknown): Blip2Config {
  const parsed =
    typeof config === 'object' && config !== null && 'modelType' in config && 'vision' in config
      ? (config as Blip2Config)
      : parseModelConfig(config);
  if (!isBlip2Config(parsed))
    throw new ConfigError(
      'model_type',
      `expected a whole BLIP-2 / InstructBLIP model ("blip-2" or "instructblip"), got ${previewValue(parsed.modelType)} (a Q-Former-only config)`,
    );
  if (!parsed.text)
    throw new ConfigError('text_config', 'a whole BLIP-2 model needs its language model config, got nothing');
  return parsed;
}

/**
 * The language model of a BLIP-2 config: OPT for a decoder-only `text_config`, T5 (T5, FlanT5, mT5...)
 * for an encoder-decoder one.
 * @throws ConfigError naming `text_config.model_type` for another decoder-only LM (llama...), or the
 *   bad field of the LM config
 */
export function blip2LanguageModel(config: Blip2Config): Blip2LanguageModel {
  const text = blip2Config(config).text;
  if (!text) throw new ConfigError('text_config', 'missing');
  if (config.useDecoderOnlyLanguageModel) {
    if (text.modelType !== 'opt')
      throw new ConfigError(
        'text_config.model_type',
        `expected "opt" (the decoder-only LM implemented here) or a T5-family encoder-decoder, got ${previewValue(text.modelType)}`,
      );
    return OptLanguageModel.fromTextConfig(text.raw);
  }
  return T5LanguageModel.fromTextConfig(text.raw);
}

/**
 * Generation settings the LM's config carries (HF builds the LM's `GenerationConfig` from
 * `text_config`): used when `generate` is not given them.
 */
export interface LmGenerationDefaults {
  /** `max_length` (HF default 20). BLIP-2 ignores it for decoder-only LMs (it uses 20 + Q - 1). */
  readonly maxLength: number;
  /** `min_length` (HF default 0); likewise replaced for decoder-only LMs. */
  readonly minLength: number;
  readonly numBeams: number;
  readonly lengthPenalty: number;
  readonly earlyStopping: boolean | 'never';
}

function numberField(raw: Record<string, unknown>, key: string, def: number, integer: boolean): number {
  const v = raw[key];
  if (v === undefined || v === null) return def;
  if (typeof v !== 'number' || !Number.isFinite(v) || (integer && (!Number.isInteger(v) || v < 0)))
    throw new ConfigError(
      `text_config.${key}`,
      `expected a ${integer ? 'non-negative integer' : 'number'}, got ${previewValue(v)}`,
    );
  return v;
}

/** Reads {@link LmGenerationDefaults} from `text_config` (HF `PretrainedConfig` defaults otherwise). */
export function lmGenerationDefaults(config: Blip2Config): LmGenerationDefaults {
  const raw = config.text?.raw ?? {};
  const es = raw['early_stopping'];
  if (es !== undefined && es !== null && typeof es !== 'boolean' && es !== 'never')
    throw new ConfigError(
      'text_config.early_stopping',
      `expected true, false or "never", got ${previewValue(es)}`,
    );
  return {
    maxLength: numberField(raw, 'max_length', 20, true),
    minLength: numberField(raw, 'min_length', 0, true),
    numBeams: Math.max(1, numberField(raw, 'num_beams', 1, true)),
    lengthPenalty: numberField(raw, 'length_penalty', 1, false),
    earlyStopping: (es ?? false) as boolean | 'never',
  };
}
