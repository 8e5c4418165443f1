import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type Blip2Config,
  ConfigError,
  QFORMER_DEFAULTS,
  type QFormerStandaloneConfig,
  VISION_DEFAULTS,
  isBlip2Config,
  parseBlip2Config,
  parseModelConfig,
  parseQFormerConfig,
  parseQFormerStandalone,
  toHfConfigJson,
} from '../src/index.js';
import { GOLDEN_DIR, HAVE_GOLDEN, throwsWithCode } from './helpers.js';

const golden = (rel: string) =>
  JSON.parse(readFileSync(join(GOLDEN_DIR, rel), 'utf8')) as Record<string, unknown>;

function configError(fn: () => unknown, field: string, ...mentions: string[]): ConfigError {
  const e = throwsWithCode(fn, 'CONFIG_INVALID') as ConfigError;
  expect(e).toBeInstanceOf(ConfigError);
  expect(e.field).toBe(field);
  expect(e.message).toContain(field);
  for (const m of mentions) expect(e.message).toContain(m);
  return e;
}

/** Drops `raw` (which holds the input JSON) to compare parsed values. */
function parsed(c: Blip2Config | QFormerStandaloneConfig) {
  const { raw: _raw, ...rest } = c;
  if ('text' in rest && rest.text !== undefined) {
    const { raw: _t, ...text } = rest.text;
    return { ...rest, text };
  }
  return rest;
}

describe('HF defaults', () => {
  it('an empty Blip2Config gets the HF defaults', () => {
    const c = parseBlip2Config({});
    expect(c.modelType).toBe('blip-2');
    expect(c.numQueryTokens).toBe(32);
    expect(c.imageTextHiddenSize).toBe(256);
    expect(c.vision).toEqual(VISION_DEFAULTS);
    expect(c.vision.layerNormEps).toBe(1e-6);
    expect(c.qformer).toEqual({ ...QFORMER_DEFAULTS, encoderHiddenSize: 1408 });
    expect(c.text).toBeUndefined();
    expect(c.useDecoderOnlyLanguageModel).toBe(true);
  });

  it('Q-Former defaults match HF Blip2QFormerConfig', () => {
    expect(parseQFormerConfig({})).toEqual({
      vocabSize: 30522,
      hiddenSize: 768,
      numHiddenLayers: 12,
      numAttentionHeads: 12,
      intermediateSize: 3072,
      hiddenAct: 'gelu',
      hiddenDropoutProb: 0.1,
      attentionProbsDropoutProb: 0.1,
      maxPositionEmbeddings: 512,
      initializerRange: 0.02,
      layerNormEps: 1e-12,
      padTokenId: 0,
      positionEmbeddingType: 'absolute',
      crossAttentionFrequency: 2,
      encoderHiddenSize: 1408,
      useQformerTextInput: false,
    });
  });

  it('encoder_hidden_size follows vision_config.hidden_size; InstructBLIP always has the text path', () => {
    const c = parseBlip2Config({ vision_config: { hidden_size: 96, num_attention_heads: 4 } });
    expect(c.qformer.encoderHiddenSize).toBe(96);
    const ib = parseBlip2Config({
      model_type: 'instructblip',
      text_config: { model_type: 't5', d_model: 40 },
    });
    expect(ib.qformer.useQformerTextInput).toBe(true);
    expect(ib.useDecoderOnlyLanguageModel).toBe(false);
    expect(ib.text).toMatchObject({ modelType: 't5', hiddenSize: 40 });
    expect(parseBlip2Config({ text_config: { model_type: 'opt' } }).text?.hiddenSize).toBe(768);
    expect(parseBlip2Config({ text_config: {} }).text?.modelType).toBe('opt');
  });
});

describe.skipIf(!HAVE_GOLDEN)('golden configs', () => {
  it('public_small/config.json is a bare Q-Former with head sizes', () => {
    const c = parseModelConfig(golden('public_small/config.json'));
    expect(isBlip2Config(c)).toBe(false);
    const q = c as QFormerStandaloneConfig;
    expect(q.modelType).toBe('blip_2_qformer');
    expect(q.numQueryTokens).toBe(8);
    expect(q.imageTextHiddenSize).toBe(32);
    expect(q.languageProjectionOutFeatures).toBe(24);
    expect(q.qformer).toMatchObject({
      hiddenSize: 64,
      numHiddenLayers: 4,
      numAttentionHeads: 4,
      encoderHiddenSize: 48,
      useQformerTextInput: true,
      vocabSize: 100,
      maxPositionEmbeddings: 64,
    });
    expect(parseQFormerStandalone(golden('public_small/config.json'))).toEqual(q);
  });

  it('public_small/blip2_config.json and the tiny models parse as HF sees them', () => {
    const b = parseModelConfig(golden('public_small/blip2_config.json')) as Blip2Config;
    expect(b.numQueryTokens).toBe(8);
    expect(b.qformer.useQformerTextInput).toBe(true);
    expect(b.text).toMatchObject({ modelType: 'opt', hiddenSize: 24 });
    const opt = parseModelConfig(golden('blip2_opt_tiny/config.json')) as Blip2Config;
    expect(opt.useDecoderOnlyLanguageModel).toBe(true);
    expect(opt.qformer.useQformerTextInput).toBe(false);
    expect(opt.vision).toMatchObject({ hiddenSize: 48, imageSize: 32, patchSize: 8, numHiddenLayers: 2 });
    const t5 = parseModelConfig(golden('blip2_t5_tiny/config.json')) as Blip2Config;
    expect(t5.useDecoderOnlyLanguageModel).toBe(false);
    expect(t5.text?.hiddenSize).toBe(40);
    const ib = parseModelConfig(golden('instructblip_tiny/hf/config.json')) as Blip2Config;
    expect(ib.modelType).toBe('instructblip');
    expect(ib.qformer.useQformerTextInput).toBe(true);
  });

  it('every golden config matches the fully expanded HF config (config_full.json)', () => {
    for (const c of ['blip2_opt_tiny', 'blip2_t5_tiny', 'instructblip_tiny']) {
      const full = golden(`${c}/config_full.json`);
      expect(parsed(parseBlip2Config(golden(`${c}/config.json`)))).toEqual(parsed(parseBlip2Config(full)));
    }
  });

  it('toHfConfigJson round-trips every golden config', () => {
    for (const rel of [
      'public_small/config.json',
      'public_small/blip2_config.json',
      'blip2_opt_tiny/config.json',
      'blip2_t5_tiny/config.json',
      'instructblip_tiny/config.json',
      'stage1_losses/config.json',
    ]) {
      const c = parseModelConfig(golden(rel));
      const json = toHfConfigJson(c);
      expect(json.model_type).toBe(golden(rel).model_type);
      const again = parseModelConfig(JSON.parse(JSON.stringify(json)));
      expect(parsed(again)).toEqual(parsed(c));
      if (isBlip2Config(c)) {
        expect(Object.keys(json)).toEqual(
          expect.arrayContaining(['qformer_config', 'vision_config', 'num_query_tokens']),
        );
        expect((json.qformer_config as Record<string, unknown>).model_type).toMatch(/qformer$/);
      }
    }
  });
});

describe('rejecting bad values names the field in HF spelling', () => {
  it('heads that do not divide the hidden size', () => {
    configError(
      () => parseBlip2Config({ qformer_config: { hidden_size: 64, num_attention_heads: 5 } }),
      'qformer_config.num_attention_heads',
      'hidden_size 64 is not divisible by num_attention_heads 5',
    );
    configError(
      () => parseBlip2Config({ vision_config: { hidden_size: 48, num_attention_heads: 5 } }),
      'vision_config.num_attention_heads',
    );
    configError(
      () => parseQFormerStandalone({ hidden_size: 10, num_attention_heads: 3 }),
      'num_attention_heads',
    );
  });

  it('wrong types and ranges report expected vs actual', () => {
    configError(
      () => parseBlip2Config({ qformer_config: { hidden_size: -3 } }),
      'qformer_config.hidden_size',
      'positive integer',
      '-3',
    );
    configError(
      () => parseBlip2Config({ qformer_config: { hidden_size: 64.5 } }),
      'qformer_config.hidden_size',
    );
    configError(
      () => parseBlip2Config({ qformer_config: { hidden_size: '64' } }),
      'qformer_config.hidden_size',
      '"64"',
    );
    configError(
      () => parseBlip2Config({ qformer_config: { hidden_size: 2 ** 40 } }),
      'qformer_config.hidden_size',
    );
    configError(
      () => parseBlip2Config({ qformer_config: { hidden_act: 'relu' } }),
      'qformer_config.hidden_act',
      '"gelu"',
      '"relu"',
    );
    configError(
      () => parseBlip2Config({ qformer_config: { position_embedding_type: 'relative_key' } }),
      'qformer_config.position_embedding_type',
    );
    configError(
      () => parseBlip2Config({ qformer_config: { hidden_dropout_prob: 1.5 } }),
      'qformer_config.hidden_dropout_prob',
      '1.5',
    );
    configError(
      () => parseBlip2Config({ qformer_config: { layer_norm_eps: 0 } }),
      'qformer_config.layer_norm_eps',
    );
    configError(
      () => parseBlip2Config({ qformer_config: { use_qformer_text_input: 'yes' } }),
      'qformer_config.use_qformer_text_input',
    );
    configError(
      () => parseBlip2Config({ qformer_config: { cross_attention_frequency: 0 } }),
      'qformer_config.cross_attention_frequency',
    );
    configError(
      () => parseBlip2Config({ qformer_config: { vocab_size: 10, pad_token_id: 10 } }),
      'qformer_config.pad_token_id',
    );
    configError(() => parseBlip2Config({ num_query_tokens: 0 }), 'num_query_tokens', 'positive integer', '0');
    configError(() => parseBlip2Config({ vision_config: { patch_size: 300 } }), 'vision_config.patch_size');
    configError(
      () => parseBlip2Config({ vision_config: { hidden_act: 'quick_gelu' } }),
      'vision_config.hidden_act',
    );
    configError(
      () => parseBlip2Config({ text_config: { model_type: 'mystery' } }),
      'text_config.hidden_size',
    );
    configError(
      () => parseBlip2Config({ text_config: { model_type: 'opt', hidden_size: 0 } }),
      'text_config.hidden_size',
    );
    configError(() => parseBlip2Config({ qformer_config: 5 }), 'qformer_config', 'JSON object');
    configError(
      () => parseBlip2Config({ use_decoder_only_language_model: 1 }),
      'use_decoder_only_language_model',
    );
  });

  it('a Q-Former encoder width that disagrees with the vision tower', () => {
    configError(
      () =>
        parseBlip2Config({
          vision_config: { hidden_size: 48, num_attention_heads: 4 },
          qformer_config: { encoder_hidden_size: 64 },
        }),
      'qformer_config.encoder_hidden_size',
      'expected 48',
      'got 64',
    );
  });

  it('unknown or missing model types', () => {
    configError(() => parseModelConfig({ model_type: 'clip' }), 'model_type', '"blip-2"', '"clip"');
    configError(() => parseModelConfig({}), 'model_type');
    configError(() => parseModelConfig([1]), '(root)');
    expect(parseModelConfig({ qformer_config: {} }).modelType).toBe('blip-2');
  });
});
