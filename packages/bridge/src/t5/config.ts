import { ConfigError } from '@qf/io';

/** Activations the T5 feed-forward supports (HF `dense_act_fn`). */
export type T5Activation = 'relu' | 'gelu' | 'gelu_new' | 'gelu_pytorch_tanh' | 'silu' | 'swish';

const ACTIVATIONS: readonly T5Activation[] = [
  'relu',
  'gelu',
  'gelu_new',
  'gelu_pytorch_tanh',
  'silu',
  'swish',
];

/**
 * A T5 / FlanT5 `text_config` (HF `T5Config`), camelCase, validated. Defaults are HF's (`t5-small`
 * sizes, relu feed-forward, tied word embeddings).
 */
export interface T5Config {
  readonly modelType: string;
  readonly vocabSize: number;
  /** `d_model`: width of the residual stream and of `inputs_embeds`. */
  readonly dModel: number;
  /** `d_kv`: per-head width of queries, keys and values (inner width = `numHeads * dKv`). */
  readonly dKv: number;
  readonly dFf: number;
  /** Encoder blocks (`num_layers`). */
  readonly numLayers: number;
  /** Decoder blocks (`num_decoder_layers`, default `num_layers`). */
  readonly numDecoderLayers: number;
  readonly numHeads: number;
  readonly relativeAttentionNumBuckets: number;
  readonly relativeAttentionMaxDistance: number;
  readonly layerNormEpsilon: number;
  /** `feed_forward_proj` as given, e.g. `relu` or `gated-gelu`. */
  readonly feedForwardProj: string;
  /** Derived from `feed_forward_proj` as HF does (`gated-gelu` -> `gelu_new`), unless set explicitly. */
  readonly denseActFn: T5Activation;
  /** Gated feed-forward (`wi_0`, `wi_1`) instead of a single `wi`. */
  readonly isGatedAct: boolean;
  /**
   * `tie_word_embeddings` (HF default true): the LM head is `shared` and the decoder output is scaled
   * by `d_model ** -0.5` before it. FlanT5 / T5 v1.1 set it false (own `lm_head`, no scaling).
   */
  readonly tieWordEmbeddings: boolean;
  readonly padTokenId: number | undefined;
  readonly eosTokenId: number | undefined;
  readonly bosTokenId: number | undefined;
  /**
   * The first decoder token: `decoder_start_token_id` (0, the pad id, in T5 checkpoints), else
   * `bos_token_id` as HF generation falls back to, else undefined (decoding then throws).
   */
  readonly decoderStartTokenId: number | undefined;
}

const MAX_INT = 2 ** 31 - 1;

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Typed readers over one config object; every failure is a ConfigError naming `prefix.key`. */
class Fields {
  constructor(
    private readonly obj: Record<string, unknown>,
    private readonly prefix: string,
  ) {}

  fail(key: string, message: string): never {
    throw new ConfigError(this.prefix ? `${this.prefix}.${key}` : key, message);
  }

  raw(key: string): unknown {
    return Object.hasOwn(this.obj, key) ? this.obj[key] : undefined;
  }

  int(key: string, def: number, min = 1): number {
    const v = this.raw(key);
    if (v === undefined) return def;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > MAX_INT)
      this.fail(key, `expected an integer >= ${min}, got ${show(v)}`);
    return v;
  }

  /** A token id: an integer >= 0, or null / absent (-> `def`). */
  tokenId(key: string, def: number | undefined): number | undefined {
    const v = this.raw(key);
    if (v === null) return undefined;
    return v === undefined ? def : this.int(key, 0, 0);
  }

  number(key: string, def: number): number {
    const v = this.raw(key);
    if (v === undefined) return def;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
      this.fail(key, `expected a number > 0, got ${show(v)}`);
    return v;
  }

  bool(key: string, def: boolean): boolean {
    const v = this.raw(key);
    if (v === undefined) return def;
    if (typeof v !== 'boolean') this.fail(key, `expected true or false, got ${show(v)}`);
    return v;
  }

  string(key: string, def: string): string {
    const v = this.raw(key);
    if (v === undefined) return def;
    if (typeof v !== 'string') this.fail(key, `expected a string, got ${show(v)}`);
    return v;
  }
}

/** `feed_forward_proj` -> (activation, gated) with HF's rules, or a ConfigError. */
function parseFeedForwardProj(f: Fields, proj: string): { act: string; gated: boolean } {
  const parts = proj.split('-');
  if ((parts.length > 1 && parts[0] !== 'gated') || parts.length > 2) {
    f.fail(
      'feed_forward_proj',
      `expected "{ACT_FN}" or "gated-{ACT_FN}" (e.g. "relu", "gated-gelu"), got ${show(proj)}`,
    );
  }
  const act = proj === 'gated-gelu' ? 'gelu_new' : (parts[parts.length - 1] as string);
  return { act, gated: parts[0] === 'gated' };
}

/**
 * Parses and validates a T5-family `text_config` (HF `T5Config`): sizes, relative attention buckets,
 * feed-forward type, tying and special tokens. Explicit `dense_act_fn` / `is_gated_act` keys win over
 * the values derived from `feed_forward_proj`, as in HF (they are set after it).
 * @param prefix the section name used in error messages (default `text_config`)
 * @throws ConfigError naming the field, with expected vs actual
 */
export function parseT5Config(json: unknown, prefix = 'text_config'): T5Config {
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new ConfigError(prefix || '(root)', `expected a JSON object, got ${show(json)}`);
  const f = new Fields(json as Record<string, unknown>, prefix);
  const modelType = f.string('model_type', 't5');
  if (!['t5', 'mt5'].includes(modelType))
    f.fail('model_type', `expected "t5" or "mt5" (the T5 language model), got ${show(modelType)}`);
  const numLayers = f.int('num_layers', 6);
  const numDecoderLayers =
    f.raw('num_decoder_layers') === null ? numLayers : f.int('num_decoder_layers', numLayers);
  const feedForwardProj = f.string('feed_forward_proj', 'relu');
  const derived = parseFeedForwardProj(f, feedForwardProj);
  const act = f.string('dense_act_fn', derived.act);
  if (!(ACTIVATIONS as readonly string[]).includes(act))
    f.fail(
      f.raw('dense_act_fn') === undefined ? 'feed_forward_proj' : 'dense_act_fn',
      `expected an activation in ${ACTIVATIONS.join(', ')} (supported), got ${show(act)}`,
    );
  const numBuckets = f.int('relative_attention_num_buckets', 32, 4);
  const maxDistance = f.int('relative_attention_max_distance', 128);
  if (maxDistance <= Math.floor(numBuckets / 2)) {
    f.fail(
      'relative_attention_max_distance',
      `expected an integer > relative_attention_num_buckets / 2 = ${Math.floor(numBuckets / 2)} ` +
        `(smaller values make HF's log buckets degenerate), got ${maxDistance}`,
    );
  }
  const vocabSize = f.int('vocab_size', 32128);
  const token = (key: string, def: number | undefined): number | undefined => {
    const id = f.tokenId(key, def);
    if (id !== undefined && id >= vocabSize)
      f.fail(key, `expected a token id < vocab_size = ${vocabSize}, got ${id}`);
    return id;
  };
  const pad = token('pad_token_id', 0);
  const bos = token('bos_token_id', undefined);
  return {
    modelType,
    vocabSize,
    dModel: f.int('d_model', 512),
    dKv: f.int('d_kv', 64),
    dFf: f.int('d_ff', 2048),
    numLayers,
    numDecoderLayers,
    numHeads: f.int('num_heads', 8),
    relativeAttentionNumBuckets: numBuckets,
    relativeAttentionMaxDistance: maxDistance,
    layerNormEpsilon: f.number('layer_norm_epsilon', 1e-6),
    feedForwardProj,
    denseActFn: act as T5Activation,
    isGatedAct: f.bool('is_gated_act', derived.gated),
    tieWordEmbeddings: f.bool('tie_word_embeddings', true),
    padTokenId: pad,
    eosTokenId: token('eos_token_id', 1),
    bosTokenId: bos,
    decoderStartTokenId: token('decoder_start_token_id', undefined) ?? bos,
  };
}
