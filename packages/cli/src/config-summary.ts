import { type ModelConfig, isBlip2Config } from '@qf/io';

/** The fields of a model config that matter at a glance (JSON-friendly). */
export interface ConfigSummary {
  readonly modelType: string;
  readonly numQueryTokens: number;
  readonly qformer: {
    readonly hiddenSize: number;
    readonly numHiddenLayers: number;
    readonly numAttentionHeads: number;
    readonly intermediateSize: number;
    readonly crossAttentionFrequency: number;
    readonly encoderHiddenSize: number;
    readonly vocabSize: number;
    readonly maxPositionEmbeddings: number;
    readonly textInput: boolean;
  };
  /** ITC embedding width, where the config names one. */
  readonly imageTextHiddenSize: number | null;
  /** Output width of the language projection, where the config names one. */
  readonly languageProjectionOutFeatures: number | null;
  readonly vision: {
    readonly hiddenSize: number;
    readonly numHiddenLayers: number;
    readonly numAttentionHeads: number;
    readonly imageSize: number;
    readonly patchSize: number;
    /** Tokens the vision tower emits per image: patches + 1 class token. */
    readonly tokens: number;
  } | null;
  readonly text: {
    readonly modelType: string;
    readonly hiddenSize: number;
    readonly decoderOnly: boolean;
  } | null;
}

/** Summarises a parsed config (see `parseModelConfig` in @qf/io). */
export function summarizeConfig(c: ModelConfig): ConfigSummary {
  const q = c.qformer;
  const qformer = {
    hiddenSize: q.hiddenSize,
    numHiddenLayers: q.numHiddenLayers,
    numAttentionHeads: q.numAttentionHeads,
    intermediateSize: q.intermediateSize,
    crossAttentionFrequency: q.crossAttentionFrequency,
    encoderHiddenSize: q.encoderHiddenSize,
    vocabSize: q.vocabSize,
    maxPositionEmbeddings: q.maxPositionEmbeddings,
    textInput: q.useQformerTextInput,
  };
  if (!isBlip2Config(c)) {
    return {
      modelType: c.modelType,
      numQueryTokens: c.numQueryTokens,
      qformer,
      imageTextHiddenSize: c.imageTextHiddenSize ?? null,
      languageProjectionOutFeatures: c.languageProjectionOutFeatures ?? null,
      vision: null,
      text: null,
    };
  }
  const v = c.vision;
  const side = Math.floor(v.imageSize / v.patchSize);
  return {
    modelType: c.modelType,
    numQueryTokens: c.numQueryTokens,
    qformer,
    imageTextHiddenSize: c.modelType === 'blip-2' ? c.imageTextHiddenSize : null,
    languageProjectionOutFeatures: c.text?.hiddenSize ?? null,
    vision: {
      hiddenSize: v.hiddenSize,
      numHiddenLayers: v.numHiddenLayers,
      numAttentionHeads: v.numAttentionHeads,
      imageSize: v.imageSize,
      patchSize: v.patchSize,
      tokens: side * side + 1,
    },
    text: c.text
      ? {
          modelType: c.text.modelType,
          hiddenSize: c.text.hiddenSize,
          decoderOnly: c.useDecoderOnlyLanguageModel,
        }
      : null,
  };
}

/** `key  value` pairs describing a config summary, for text output. */
export function configLines(s: ConfigSummary): [string, string][] {
  const q = s.qformer;
  const lines: [string, string][] = [
    ['model type', s.modelType],
    [
      'Q-Former',
      `hidden ${q.hiddenSize}, ${q.numHiddenLayers} layers, ${q.numAttentionHeads} heads, intermediate ${q.intermediateSize}, vocab ${q.vocabSize}, max positions ${q.maxPositionEmbeddings}`,
    ],
    ['queries', String(s.numQueryTokens)],
    ['cross-attention', `every ${q.crossAttentionFrequency} layer(s), encoder width ${q.encoderHiddenSize}`],
    ['text input', q.textInput ? 'yes' : 'no'],
  ];
  if (s.imageTextHiddenSize !== null) lines.push(['ITC width', String(s.imageTextHiddenSize)]);
  if (s.languageProjectionOutFeatures !== null)
    lines.push(['language projection', `-> ${s.languageProjectionOutFeatures}`]);
  if (s.vision) {
    const v = s.vision;
    lines.push([
      'vision',
      `hidden ${v.hiddenSize}, ${v.numHiddenLayers} layers, ${v.numAttentionHeads} heads, ${v.imageSize}px / patch ${v.patchSize} = ${v.tokens} tokens`,
    ]);
  }
  if (s.text)
    lines.push([
      'text model',
      `${s.text.modelType}, hidden ${s.text.hiddenSize}, ${s.text.decoderOnly ? 'decoder-only' : 'encoder-decoder'}`,
    ]);
  return lines;
}
