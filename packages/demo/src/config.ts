import { type Blip2Config, parseBlip2Config } from '@qf/io';
import { TEXT_LENGTH, TOKENS } from './data.js';
import { DemoError } from './errors.js';

/** Model sizes of the miniature BLIP-2. */
export interface DemoSizes {
  readonly imageSize: number;
  readonly patchSize: number;
  /** Vision tower width (= the Q-Former's encoder_hidden_size). */
  readonly visionHidden: number;
  readonly visionLayers: number;
  /** Vision MLP width as a multiple of the vision width (intermediate_size = ratio x width). */
  readonly visionMlpRatio: number;
  readonly qformerHidden: number;
  readonly qformerLayers: number;
  readonly numQueryTokens: number;
  /** ITC embedding width (image_text_hidden_size). */
  readonly itcWidth: number;
  readonly lmHidden: number;
  readonly lmLayers: number;
}

export const DEFAULT_SIZES: DemoSizes = {
  imageSize: 32,
  patchSize: 8,
  visionHidden: 96,
  visionLayers: 2,
  visionMlpRatio: 2,
  qformerHidden: 64,
  qformerLayers: 2,
  numQueryTokens: 8,
  itcWidth: 32,
  lmHidden: 64,
  lmLayers: 2,
};

function check(name: string, v: number, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max)
    throw new DemoError('DEMO_OPTIONS', `${name} must be an integer in ${min}..${max}, got ${v}`);
}

/**
 * The HF `Blip2Config` JSON of the demo model (`model_type` `blip-2`, OPT text model), which HF
 * transformers can load: vision tower, Q-Former and OPT sections sized from `s`.
 */
export function demoConfigJson(s: DemoSizes = DEFAULT_SIZES): Record<string, unknown> {
  check('imageSize', s.imageSize, 24, 256);
  check('patchSize', s.patchSize, 2, s.imageSize);
  for (const k of ['visionHidden', 'qformerHidden', 'lmHidden'] as const) {
    check(k, s[k], 16, 1024);
    if (s[k] % 16 !== 0) throw new DemoError('DEMO_OPTIONS', `${k} must be a multiple of 16, got ${s[k]}`);
  }
  check('visionLayers', s.visionLayers, 1, 12);
  check('visionMlpRatio', s.visionMlpRatio, 1, 8);
  check('qformerLayers', s.qformerLayers, 1, 12);
  check('lmLayers', s.lmLayers, 1, 12);
  check('numQueryTokens', s.numQueryTokens, 1, 64);
  check('itcWidth', s.itcWidth, 8, 1024);
  const heads = (h: number) => h / 16;
  return {
    architectures: ['Blip2ForConditionalGeneration'],
    model_type: 'blip-2',
    num_query_tokens: s.numQueryTokens,
    image_text_hidden_size: s.itcWidth,
    initializer_range: 0.02,
    initializer_factor: 1.0,
    image_token_index: null,
    use_decoder_only_language_model: true,
    torch_dtype: 'float32',
    vision_config: {
      model_type: 'blip_2_vision_model',
      hidden_size: s.visionHidden,
      intermediate_size: s.visionMlpRatio * s.visionHidden,
      num_hidden_layers: s.visionLayers,
      num_attention_heads: heads(s.visionHidden),
      image_size: s.imageSize,
      patch_size: s.patchSize,
      hidden_act: 'gelu',
      layer_norm_eps: 1e-6,
      qkv_bias: true,
    },
    qformer_config: {
      model_type: 'blip_2_qformer',
      vocab_size: TOKENS.qformer.size,
      hidden_size: s.qformerHidden,
      num_hidden_layers: s.qformerLayers,
      num_attention_heads: heads(s.qformerHidden),
      intermediate_size: 4 * s.qformerHidden,
      hidden_act: 'gelu',
      max_position_embeddings: TEXT_LENGTH,
      cross_attention_frequency: 1,
      encoder_hidden_size: s.visionHidden,
      pad_token_id: TOKENS.qformer.pad,
      layer_norm_eps: 1e-12,
      use_qformer_text_input: true,
    },
    text_config: {
      model_type: 'opt',
      vocab_size: TOKENS.lm.size,
      hidden_size: s.lmHidden,
      num_hidden_layers: s.lmLayers,
      ffn_dim: 4 * s.lmHidden,
      num_attention_heads: heads(s.lmHidden),
      max_position_embeddings: 2 * (s.numQueryTokens + TEXT_LENGTH),
      word_embed_proj_dim: s.lmHidden,
      do_layer_norm_before: true,
      activation_function: 'relu',
      enable_bias: true,
      layer_norm_elementwise_affine: true,
      tie_word_embeddings: true,
      pad_token_id: TOKENS.lm.pad,
      bos_token_id: TOKENS.lm.bos,
      eos_token_id: TOKENS.lm.eos,
    },
  };
}

/** The parsed config (throws ConfigError / DemoError on bad sizes). */
export function demoConfig(s: DemoSizes = DEFAULT_SIZES): Blip2Config {
  return parseBlip2Config(demoConfigJson(s));
}
