import { ConfigError } from '@qf/io';

/**
 * An HF `OPTConfig` (the `text_config` of a BLIP-2 OPT checkpoint), camelCase, with HF's defaults
 * (transformers `OPTConfig.__init__`). Only fields that change the forward pass or generation are kept.
 */
export interface OptConfig {
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly numHiddenLayers: number;
  readonly numAttentionHeads: number;
  readonly ffnDim: number;
  readonly maxPositionEmbeddings: number;
  /** Width of the token embeddings (and of `inputs_embeds`); `project_in`/`project_out` exist when it differs from `hiddenSize`. */
  readonly wordEmbedProjDim: number;
  /** Pre-LayerNorm blocks (true for every OPT size except 350m). */
  readonly doLayerNormBefore: boolean;
  /** Only for checkpoints fine-tuned before transformers 4.20.1: no final LayerNorm. */
  readonly removeFinalLayerNorm: boolean;
  readonly activationFunction: OptActivation;
  readonly enableBias: boolean;
  readonly layerNormElementwiseAffine: boolean;
  /** `lm_head.weight` is `embed_tokens.weight` (HF `tie_word_embeddings`, default true). */
  readonly tieWordEmbeddings: boolean;
  readonly bosTokenId: number | undefined;
  readonly padTokenId: number | undefined;
  /** Every EOS id (HF allows a list). */
  readonly eosTokenIds: readonly number[];
  /** LayerNorm epsilon (PyTorch `nn.LayerNorm` default; OPT does not configure it). */
  readonly layerNormEps: number;
}

/** Activations an OPT config may name (HF `ACT2FN` keys we implement). */
export const OPT_ACTIVATIONS = ['relu', 'gelu', 'gelu_new', 'gelu_pytorch_tanh'] as const;
export type OptActivation = (typeof OPT_ACTIVATIONS)[number];

/** HF `OPTConfig` defaults (facebook/opt-125m sizes). */
export const OPT_DEFAULTS = {
  vocab_size: 50272,
  hidden_size: 768,
  num_hidden_layers: 12,
  ffn_dim: 3072,
  max_position_embeddings: 2048,
  num_attention_heads: 12,
  pad_token_id: 1,
  bos_token_id: 2,
  eos_token_id: 2,
} as const;

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Typed reads of one config section; failures are ConfigError naming `prefix.key`. */
class Fields {
  constructor(
    private readonly obj: Record<string, unknown>,
    private readonly prefix: string,
  ) {}

  fail(key: string, message: string): never {
    throw new ConfigError(this.prefix ? `${this.prefix}.${key}` : key, message);
  }

  private raw(key: string): unknown {
    return Object.hasOwn(this.obj, key) ? this.obj[key] : undefined;
  }

  int(key: string, def: number, min = 1): number {
    const v = this.raw(key);
    if (v === undefined || v === null) return def;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > 2 ** 31 - 1)
      this.fail(key, `expected an integer >= ${min}, got ${show(v)}`);
    return v;
  }

  /** A token id (integer >= 0), or undefined when absent or null. */
  tokenId(key: string, def: number | undefined): number | undefined {
    const v = this.raw(key);
    if (v === null) return undefined;
    if (v === undefined) return def;
    return this.int(key, 0, 0);
  }

  /** One token id or a list of them (HF `eos_token_id`). */
  tokenIds(key: string, def: readonly number[]): readonly number[] {
    const v = this.raw(key);
    if (v === null) return [];
    if (v === undefined) return def;
    if (Array.isArray(v)) {
      if (!v.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0))
        this.fail(key, `expected a token id or a list of token ids, got ${show(v)}`);
      return v as number[];
    }
    return [this.int(key, 0, 0)];
  }

  bool(key: string, def: boolean): boolean {
    const v = this.raw(key);
    if (v === undefined || v === null) return def;
    if (typeof v !== 'boolean') this.fail(key, `expected true or false, got ${show(v)}`);
    return v;
  }

  oneOf<K extends string>(key: string, allowed: readonly K[], def: K): K {
    const v = this.raw(key);
    if (v === undefined || v === null) return def;
    if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v))
      this.fail(
        key,
        `expected ${allowed.map((a) => JSON.stringify(a)).join(' or ')} (supported), got ${show(v)}`,
      );
    return v as K;
  }
}

/**
 * Parses an OPT `text_config` (the raw JSON, e.g. `parseModelConfig(json).text.raw`).
 * @param prefix the section's HF name, used in error messages
 * @throws ConfigError naming the field (`text_config.num_attention_heads`...) with expected vs actual
 */
export function parseOptConfig(json: unknown, prefix = 'text_config'): OptConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new ConfigError(prefix || '(root)', `expected a JSON object, got ${show(json)}`);
  const obj = json as Record<string, unknown>;
  const f = new Fields(obj, prefix);
  const modelType = obj['model_type'];
  if (modelType !== undefined && modelType !== 'opt')
    f.fail('model_type', `expected "opt", got ${show(modelType)}`);
  const d = OPT_DEFAULTS;
  const hiddenSize = f.int('hidden_size', d.hidden_size);
  const numAttentionHeads = f.int('num_attention_heads', d.num_attention_heads);
  if (hiddenSize % numAttentionHeads !== 0)
    f.fail(
      'num_attention_heads',
      `must divide hidden_size (expected a divisor of ${hiddenSize}, got ${numAttentionHeads})`,
    );
  return {
    vocabSize: f.int('vocab_size', d.vocab_size),
    hiddenSize,
    numHiddenLayers: f.int('num_hidden_layers', d.num_hidden_layers),
    numAttentionHeads,
    ffnDim: f.int('ffn_dim', d.ffn_dim),
    maxPositionEmbeddings: f.int('max_position_embeddings', d.max_position_embeddings),
    wordEmbedProjDim: f.int('word_embed_proj_dim', hiddenSize),
    doLayerNormBefore: f.bool('do_layer_norm_before', true),
    removeFinalLayerNorm: f.bool('_remove_final_layer_norm', false),
    activationFunction: f.oneOf('activation_function', OPT_ACTIVATIONS, 'relu'),
    enableBias: f.bool('enable_bias', true),
    layerNormElementwiseAffine: f.bool('layer_norm_elementwise_affine', true),
    tieWordEmbeddings: f.bool('tie_word_embeddings', true),
    bosTokenId: f.tokenId('bos_token_id', d.bos_token_id),
    padTokenId: f.tokenId('pad_token_id', d.pad_token_id),
    eosTokenIds: f.tokenIds('eos_token_id', [d.eos_token_id]),
    layerNormEps: 1e-5,
  };
}
