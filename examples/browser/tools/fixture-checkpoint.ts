// A seeded, untrained whole BLIP-2 checkpoint shaped like `qf demo`'s shapes model (vision tower,
// Q-Former with text path and retrieval heads, projector, OPT, word-level shapes tokenizers), for
// the examples' tests when no trained checkpoint is at hand. Its numbers mean nothing; tests use it
// to compare backends with each other, never to judge quality. Shared by examples/browser and
// examples/node-search.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OptLanguageModel, wordLevelTokenizerFiles } from '@qf/bridge';
import { type ParamSpec, initParams, qformerParamSpecs, visionParamSpecs } from '@qf/core';
import { type HostTensor, parseBlip2Config } from '@qf/io';
import { writeCheckpointDir } from '@qf/io/node';
import { shapesVocabulary } from '@qf/shapes';

const TEXT_LENGTH = 12; // longest shapes caption (10 words) + [CLS]/[SEP]

/** HF `Blip2Config` JSON of the fixture (sizes as `qf demo`'s defaults). */
export function fixtureConfigJson(): Record<string, unknown> {
  const v = shapesVocabulary();
  return {
    architectures: ['Blip2ForConditionalGeneration'],
    model_type: 'blip-2',
    num_query_tokens: 8,
    image_text_hidden_size: 32,
    use_decoder_only_language_model: true,
    vision_config: {
      model_type: 'blip_2_vision_model',
      hidden_size: 64,
      intermediate_size: 256,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      image_size: 32,
      patch_size: 8,
      layer_norm_eps: 1e-6,
      qkv_bias: true,
    },
    qformer_config: {
      model_type: 'blip_2_qformer',
      vocab_size: v.qformer.tokens.length,
      hidden_size: 64,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      intermediate_size: 256,
      max_position_embeddings: TEXT_LENGTH,
      cross_attention_frequency: 1,
      encoder_hidden_size: 64,
      pad_token_id: 0,
      use_qformer_text_input: true,
    },
    text_config: {
      model_type: 'opt',
      vocab_size: v.lm.tokens.length,
      hidden_size: 64,
      num_hidden_layers: 2,
      ffn_dim: 256,
      num_attention_heads: 4,
      max_position_embeddings: 64,
      word_embed_proj_dim: 64,
      do_layer_norm_before: true,
      activation_function: 'relu',
      tie_word_embeddings: true,
      pad_token_id: 1,
      bos_token_id: 2,
      eos_token_id: 2,
    },
  };
}

/** The kind of an LM parameter, from its HF name (for the init scheme). */
function lmKind(name: string): ParamSpec['kind'] {
  if (name.includes('layer_norm')) return name.endsWith('.bias') ? 'norm.bias' : 'norm.weight';
  if (name.endsWith('.bias')) return 'bias';
  if (name.includes('embed_')) return 'embedding';
  return 'linear.weight';
}

/** Every tensor of the fixture, seeded (`stress` init: every value non-trivial). */
export function fixtureTensors(seed = 1): Record<string, HostTensor> {
  const json = fixtureConfigJson();
  const cfg = parseBlip2Config(json);
  const lm = OptLanguageModel.fromTextConfig(json['text_config']);
  const specs: ParamSpec[] = [
    ...visionParamSpecs(cfg.vision),
    ...qformerParamSpecs({
      qformer: cfg.qformer,
      numQueryTokens: cfg.numQueryTokens,
      textPath: true,
      retrievalHeads: { imageTextHiddenSize: cfg.imageTextHiddenSize },
      languageProjection: { outFeatures: 64 },
    }),
    ...lm.paramSpecs().map((p) => ({ name: p.name, shape: p.shape, kind: lmKind(p.name) })),
  ];
  return Object.fromEntries(initParams(specs, { seed, scheme: 'stress' }));
}

/** The shapes tokenizers: LM (`</s>` first, OPT style) and Q-Former (`[CLS] ... [SEP]`). */
export function shapesTokenizerFiles() {
  const v = shapesVocabulary();
  const q = v.qformer;
  return {
    lm: wordLevelTokenizerFiles(v.lm.tokens, { pad: v.lm.pad, unk: v.lm.unk, bos: v.lm.bos }),
    qformer: wordLevelTokenizerFiles(q.tokens, { pad: q.pad, unk: q.unk, bos: q.cls, eos: q.sep }),
  };
}

/** Writes the fixture as an HF model directory with `tokenizer.json` and `qformer_tokenizer/`. */
export async function writeFixtureCheckpoint(dir: string, seed = 1): Promise<string> {
  await writeCheckpointDir(dir, { config: fixtureConfigJson(), tensors: fixtureTensors(seed) });
  const toks = shapesTokenizerFiles();
  for (const [sub, files] of [
    ['', toks.lm],
    ['qformer_tokenizer', toks.qformer],
  ] as const) {
    await mkdir(join(dir, sub), { recursive: true });
    await writeFile(join(dir, sub, 'tokenizer.json'), JSON.stringify(files.tokenizer));
    await writeFile(join(dir, sub, 'tokenizer_config.json'), JSON.stringify(files.config));
  }
  return dir;
}
