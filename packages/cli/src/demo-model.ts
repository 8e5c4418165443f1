import type { QFormerModelSpec } from '@qf/core';
import { type Blip2Config, parseBlip2Config } from '@qf/io';

/**
 * The demo model: a small BLIP-2-style config written in code, in HF `Blip2Config` JSON (model_type
 * `blip-2` with `qformer_config`, `vision_config` and `text_config`), so the directory it is saved to
 * opens in HF transformers. Only the Q-Former and its heads get weights; the vision tower and OPT
 * sizes describe what the Q-Former is wired for (encoder width 96 = vision hidden size, language
 * projection width 160 = OPT hidden size).
 */
export function demoConfigJson(): Record<string, unknown> {
  return {
    architectures: ['Blip2ForImageTextRetrieval'],
    model_type: 'blip-2',
    num_query_tokens: 16,
    image_text_hidden_size: 64,
    initializer_range: 0.02,
    initializer_factor: 1.0,
    image_token_index: null,
    use_decoder_only_language_model: true,
    torch_dtype: 'float32',
    qformer_config: {
      model_type: 'blip_2_qformer',
      vocab_size: 512,
      hidden_size: 128,
      num_hidden_layers: 4,
      num_attention_heads: 4,
      intermediate_size: 512,
      hidden_act: 'gelu',
      max_position_embeddings: 64,
      cross_attention_frequency: 2,
      encoder_hidden_size: 96,
      pad_token_id: 0,
      use_qformer_text_input: true,
    },
    vision_config: {
      model_type: 'blip_2_vision_model',
      hidden_size: 96,
      intermediate_size: 384,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      image_size: 32,
      patch_size: 8,
    },
    text_config: {
      model_type: 'opt',
      vocab_size: 512,
      hidden_size: 160,
      num_hidden_layers: 2,
      ffn_dim: 640,
      num_attention_heads: 4,
      max_position_embeddings: 64,
      word_embed_proj_dim: 160,
    },
  };
}

/** The parsed demo config. */
export function demoConfig(): Blip2Config {
  return parseBlip2Config(demoConfigJson());
}

/** Every part of the Q-Former model, sized from the config: text path, ITC/ITM heads, language projection. */
export function demoSpec(config: Blip2Config): QFormerModelSpec {
  return {
    qformer: config.qformer,
    numQueryTokens: config.numQueryTokens,
    textPath: true,
    retrievalHeads: { imageTextHiddenSize: config.imageTextHiddenSize },
    languageProjection: { outFeatures: config.text?.hiddenSize ?? config.qformer.hiddenSize },
  };
}
