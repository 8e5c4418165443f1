import { join } from 'node:path';
import type { Backend, ParamStore } from '@qf/core';
import { type Checkpoint, ConfigError, TensorError, isBlip2Config, parseModelConfig } from '@qf/io';
import { openCheckpointDir } from '@qf/io/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { goldenDir, requireDir } from '../../../test-utils/parity.js';
import { OPT_DEFAULTS, parseOptConfig } from '../src/opt/config.js';
import { OptLanguageModel } from '../src/opt/lm.js';
import { optParamSpecs } from '../src/opt/params.js';
import { optPositionIds } from '../src/opt/positions.js';

const caseDir = requireDir(join(goldenDir, 'blip2_opt_tiny'));

/** The checkpoint with some tensors hidden (as if never stored) or renamed. */
function without(checkpoint: Checkpoint, hidden: readonly string[]): Checkpoint {
  const keep = (n: string) => !hidden.includes(n);
  return {
    names: () => checkpoint.names().filter(keep),
    info: (n) => (keep(n) ? checkpoint.info(n) : undefined),
    read: (n, o) => (keep(n) ? checkpoint.read(n, o) : Promise.reject(new Error(`hidden ${n}`))),
    close: () => checkpoint.close(),
  };
}

describe('OPT text_config', () => {
  it('applies HF OPTConfig defaults', () => {
    const c = parseOptConfig({ model_type: 'opt' });
    expect(c).toMatchObject({
      vocabSize: OPT_DEFAULTS.vocab_size,
      hiddenSize: 768,
      numHiddenLayers: 12,
      numAttentionHeads: 12,
      ffnDim: 3072,
      wordEmbedProjDim: 768,
      doLayerNormBefore: true,
      activationFunction: 'relu',
      enableBias: true,
      tieWordEmbeddings: true,
      bosTokenId: 2,
      padTokenId: 1,
      eosTokenIds: [2],
    });
  });

  it('reads the golden text_config (bos/pad from defaults, eos 108)', async () => {
    const { config, checkpoint } = await openCheckpointDir(join(caseDir, 'hf'));
    await checkpoint.close();
    const parsed = parseModelConfig(config);
    if (!isBlip2Config(parsed) || !parsed.text) throw new Error('expected blip-2 with text_config');
    const lm = OptLanguageModel.fromTextConfig(parsed.text.raw);
    expect(lm.tokens).toEqual({ bos: 2, eos: 108, pad: 1, decoderStart: undefined });
    expect(lm.kind).toBe('decoder-only');
    expect(lm.modelType).toBe('opt');
  });

  it('rejects bad fields with a ConfigError naming them', () => {
    const bad: [Record<string, unknown>, string][] = [
      [{ hidden_size: 30, num_attention_heads: 4 }, 'text_config.num_attention_heads'],
      [{ hidden_size: -1 }, 'text_config.hidden_size'],
      [{ activation_function: 'swish' }, 'text_config.activation_function'],
      [{ do_layer_norm_before: 'yes' }, 'text_config.do_layer_norm_before'],
      [{ eos_token_id: [2, 'x'] }, 'text_config.eos_token_id'],
      [{ model_type: 't5' }, 'text_config.model_type'],
    ];
    for (const [json, field] of bad) {
      let err: unknown;
      try {
        parseOptConfig(json);
      } catch (e) {
        err = e;
      }
      expect(err, field).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).field).toBe(field);
    }
    expect(() => parseOptConfig([])).toThrow(ConfigError);
  });

  it('lists parameters for every variant (projections, post-LN, no bias, untied head)', () => {
    const names = (json: Record<string, unknown>) =>
      optParamSpecs(
        parseOptConfig({ hidden_size: 8, num_attention_heads: 2, num_hidden_layers: 1, ...json }),
      ).map((p) => p.name.replace('language_model.', ''));
    const base = names({});
    expect(base).toContain('model.decoder.final_layer_norm.weight');
    expect(base).not.toContain('lm_head.weight');
    expect(base.filter((n) => n.includes('project_'))).toEqual([]);
    expect(names({ word_embed_proj_dim: 4 })).toEqual(
      expect.arrayContaining(['model.decoder.project_in.weight', 'model.decoder.project_out.weight']),
    );
    expect(names({ do_layer_norm_before: false })).not.toContain('model.decoder.final_layer_norm.weight');
    expect(names({ enable_bias: false }).some((n) => n.endsWith('proj.bias') || n.includes('fc1.bias'))).toBe(
      false,
    );
    expect(names({ tie_word_embeddings: false })).toContain('lm_head.weight');
    const spec = optParamSpecs(
      parseOptConfig({ hidden_size: 8, num_attention_heads: 2, max_position_embeddings: 10 }),
    );
    expect(spec.find((p) => p.name.endsWith('embed_positions.weight'))?.shape).toEqual([12, 8]);
  });
});

describe('OPT tensors from a checkpoint (tied lm_head / embed_tokens)', () => {
  let checkpoint: Checkpoint;
  let lm: OptLanguageModel;
  const embed = 'language_model.model.decoder.embed_tokens.weight';
  const head = 'language_model.lm_head.weight';

  beforeAll(async () => {
    const dir = await openCheckpointDir(join(caseDir, 'hf'));
    checkpoint = dir.checkpoint;
    const parsed = parseModelConfig(dir.config);
    if (!isBlip2Config(parsed) || !parsed.text) throw new Error('expected blip-2 with text_config');
    lm = OptLanguageModel.fromTextConfig(parsed.text.raw);
  });
  afterAll(async () => checkpoint?.close());

  it('reads embed_tokens when both are stored and reports the tied head as ignored', async () => {
    const loaded = await lm.loadTensors(checkpoint);
    expect([...loaded.tensors.keys()].sort()).toEqual(
      lm
        .paramSpecs()
        .map((p) => p.name)
        .sort(),
    );
    expect(loaded.tiedFrom).toBe('embed_tokens');
    expect(loaded.ignored).toEqual([head]);
  });

  it('fills embed_tokens from lm_head when only the head is stored, and the other way round', async () => {
    const full = await checkpoint.read(embed);
    const onlyHead = await lm.loadTensors(without(checkpoint, [embed]));
    expect(onlyHead.tiedFrom).toBe('lm_head');
    expect(onlyHead.tensors.get(embed)?.data).toEqual(full.data);
    const onlyEmbed = await lm.loadTensors(without(checkpoint, [head]));
    expect(onlyEmbed.tiedFrom).toBe('embed_tokens');
    expect(onlyEmbed.ignored).toEqual([]);
  });

  it('names a missing or mis-shaped tensor with expected vs actual', async () => {
    await expect(lm.loadTensors(without(checkpoint, [embed, head]))).rejects.toMatchObject({
      code: 'TENSOR_MISSING',
      tensor: embed,
      expected: '[120, 40]',
    });
    const untied = new OptLanguageModel({ ...lm.config, tieWordEmbeddings: false });
    await expect(untied.loadTensors(without(checkpoint, [head]))).rejects.toBeInstanceOf(TensorError);
    const wide = new OptLanguageModel({ ...lm.config, ffnDim: 81 });
    await expect(wide.loadTensors(checkpoint)).rejects.toMatchObject({
      code: 'TENSOR_SHAPE',
      tensor: 'language_model.model.decoder.layers.0.fc1.weight',
      expected: '[81, 40]',
      actual: '[80, 40]',
    });
  });
});

describe('OPT position ids', () => {
  const mask = {
    dtype: 'I64' as const,
    shape: [2, 5],
    data: BigInt64Array.of(1n, 1n, 1n, 0n, 0n, 0n, 0n, 1n, 1n, 1n),
  };
  it('generate: cumsum(mask) - 1 with padding -> 1', () => {
    expect(Array.from(optPositionIds(mask, 'generate').data)).toEqual([0, 1, 2, 1, 1, 1, 1, 0, 1, 2]);
  });
  it('forward: cumsum(mask) * mask - 1 (padding -> -1)', () => {
    expect(Array.from(optPositionIds(mask, 'forward').data)).toEqual([0, 1, 2, -1, -1, -1, -1, 0, 1, 2]);
  });
  it('rejects a mask that is not [B, S]', () => {
    expect(() => optPositionIds({ dtype: 'I32', shape: [4], data: new Int32Array(4) }, 'generate')).toThrow(
      TensorError,
    );
  });
});

describe('OPT decoding session (host-side checks, before any backend call)', () => {
  const lm = new OptLanguageModel(parseOptConfig({ hidden_size: 8, num_attention_heads: 2, vocab_size: 11 }));
  const backend = {} as Backend<unknown>;
  const params = {} as ParamStore<unknown>;
  const f32 = (shape: number[]) => ({
    dtype: 'F32' as const,
    shape,
    data: new Float32Array(shape.reduce((a, b) => a * b, 1)),
  });
  const i32 = (shape: number[]) => ({
    dtype: 'I32' as const,
    shape,
    data: new Int32Array(shape.reduce((a, b) => a * b, 1)).fill(1),
  });

  it('names a mis-shaped prompt tensor', () => {
    expect(() => lm.session(backend, params, { softPrompt: f32([2, 4, 7]) })).toThrow(/soft_prompt/);
    expect(() => lm.session(backend, params, { softPrompt: f32([2, 4, 8]), inputIds: i32([3, 2]) })).toThrow(
      /input_ids/,
    );
    expect(() => lm.session(backend, params, { inputIds: i32([2, 3]), attentionMask: i32([2, 4]) })).toThrow(
      TensorError,
    );
    expect(() => lm.session(backend, params, {})).toThrow(TensorError);
  });

  it('builds the mask [ones(Q) ; text mask] and refuses steps before the prefill', async () => {
    const mask = { dtype: 'I32' as const, shape: [1, 3], data: Int32Array.of(0, 1, 1) };
    const session = lm.session(backend, params, {
      softPrompt: f32([1, 2, 8]),
      inputIds: i32([1, 3]),
      attentionMask: mask,
    });
    expect(session.rows).toBe(1);
    expect(Array.from(session.attentionMask().data)).toEqual([1, 1, 0, 1, 1]);
    await expect(session.step(Int32Array.of(1))).rejects.toThrow(/call prefill first/);
    expect(() => session.reorder(Int32Array.of(0))).toThrow(/call prefill first/);
  });
});
