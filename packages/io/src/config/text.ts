import { FieldReader, requireObject } from './fields.js';

/** The language model's config: its type and width; everything else stays in `raw`. */
export interface TextConfig {
  /** HF `model_type` of the LM, e.g. `opt` or `t5`. */
  readonly modelType: string;
  /** The LM's hidden size (`hidden_size`, or `d_model` for T5): the language projection's output width. */
  readonly hiddenSize: number;
  /** The `text_config` JSON as given. */
  readonly raw: Record<string, unknown>;
}

/** HF defaults of the hidden size per LM type, used when `text_config` leaves it out. */
const HIDDEN_SIZE_DEFAULTS: Readonly<Record<string, { key: string; value: number }>> = {
  opt: { key: 'hidden_size', value: 768 },
  t5: { key: 'd_model', value: 512 },
  mt5: { key: 'd_model', value: 512 },
  umt5: { key: 'd_model', value: 512 },
  llama: { key: 'hidden_size', value: 4096 },
};

/** LM types HF treats as encoder-decoder (not in `MODEL_FOR_CAUSAL_LM_MAPPING_NAMES`). */
const ENCODER_DECODER_TYPES: ReadonlySet<string> = new Set([
  't5',
  'mt5',
  'umt5',
  'longt5',
  'switch_transformers',
]);

/** LM types HF treats as decoder-only. */
const DECODER_ONLY_TYPES: ReadonlySet<string> = new Set([
  'opt',
  'llama',
  'gpt2',
  'gpt_neox',
  'gptj',
  'mistral',
  'gemma',
  'gemma2',
  'qwen2',
  'phi',
  'bloom',
]);

/**
 * Parses `text_config`: `model_type` (HF default `opt`) and the hidden size (`hidden_size`, `d_model`
 * for T5-style models, with HF defaults for opt/t5/llama). A missing or invalid width throws ConfigError.
 */
export function parseTextConfig(json: unknown, prefix = 'text_config'): TextConfig {
  const obj = requireObject(json, prefix);
  const r: FieldReader = new FieldReader(obj, prefix);
  const modelType = r.string('model_type', 'opt');
  // Own keys only: a model_type such as "constructor" or "__proto__" must not hit Object.prototype.
  const known = Object.hasOwn(HIDDEN_SIZE_DEFAULTS, modelType) ? HIDDEN_SIZE_DEFAULTS[modelType] : undefined;
  let hiddenSize: number | undefined;
  for (const key of ['hidden_size', 'd_model', 'n_embd']) {
    if (r.has(key)) {
      hiddenSize = r.int(key, 0);
      break;
    }
  }
  if (hiddenSize === undefined) {
    if (known === undefined) {
      r.fail(
        'hidden_size',
        `expected a positive integer for model_type "${modelType}" (no default known), got nothing`,
      );
    }
    hiddenSize = known.value;
  }
  return { modelType, hiddenSize, raw: { ...obj } };
}

/**
 * Whether HF runs this LM decoder-only: known decoder-only types give true, T5-family types false,
 * unknown types the config's own `use_decoder_only_language_model` (default true).
 */
export function isDecoderOnlyLm(modelType: string | undefined, declared: boolean | undefined): boolean {
  if (modelType !== undefined && ENCODER_DECODER_TYPES.has(modelType)) return false;
  if (modelType !== undefined && DECODER_ONLY_TYPES.has(modelType)) return true;
  return declared ?? true;
}

/** The HF JSON of a text config: `raw` with `model_type` and the hidden size written back. */
export function textConfigToJson(c: TextConfig): Record<string, unknown> {
  const key =
    Object.hasOwn(c.raw, 'd_model') ||
    (Object.hasOwn(HIDDEN_SIZE_DEFAULTS, c.modelType) && HIDDEN_SIZE_DEFAULTS[c.modelType]?.key === 'd_model')
      ? 'd_model'
      : 'hidden_size';
  return { ...c.raw, model_type: c.modelType, [key]: c.hiddenSize };
}
