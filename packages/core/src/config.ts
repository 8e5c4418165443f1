import { type ModelConfig, isBlip2Config, parseModelConfig } from '@qf/io';
import type { QFormerModelConfig } from './load.js';

/**
 * What a parsed config says about the Q-Former model: the Q-Former itself, the number of queries,
 * and the head widths where the config names them.
 * Accepts HF `blip-2` / `instructblip` configs and bare `blip_2_qformer` configs.
 */
export function qformerModelConfig(config: ModelConfig): QFormerModelConfig {
  if (isBlip2Config(config)) {
    return {
      qformer: config.qformer,
      numQueryTokens: config.numQueryTokens,
      imageTextHiddenSize: config.modelType === 'blip-2' ? config.imageTextHiddenSize : undefined,
      languageProjectionOutFeatures: config.text?.hiddenSize,
    };
  }
  return {
    qformer: config.qformer,
    numQueryTokens: config.numQueryTokens,
    imageTextHiddenSize: config.imageTextHiddenSize,
    languageProjectionOutFeatures: config.languageProjectionOutFeatures,
  };
}

/** Parses config.json content (see `parseModelConfig` in @qf/io) into a {@link QFormerModelConfig}. */
export function qformerModelConfigFromJson(json: unknown): QFormerModelConfig {
  return qformerModelConfig(parseModelConfig(json));
}
