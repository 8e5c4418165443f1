import { describe, expect, it } from 'vitest';
import {
  type CheckpointLayout,
  detectCheckpointLayout,
  fromCanonicalName,
  isCanonicalName,
  mapCheckpointNames,
  toCanonicalName,
} from '../src/index.js';

const CASES: Record<CheckpointLayout, [string, string | undefined][]> = {
  'hf-blip2': [
    ['query_tokens', 'query_tokens'],
    ['embeddings.word_embeddings.weight', 'embeddings.word_embeddings.weight'],
    ['qformer.layernorm.bias', 'qformer.layernorm.bias'],
    [
      'qformer.encoder.layer.11.crossattention.attention.value.weight',
      'qformer.encoder.layer.11.crossattention.attention.value.weight',
    ],
    [
      'qformer.encoder.layer.0.output_query.LayerNorm.weight',
      'qformer.encoder.layer.0.output_query.LayerNorm.weight',
    ],
    [
      'vision_model.encoder.layers.3.self_attn.qkv.weight',
      'vision_model.encoder.layers.3.self_attn.qkv.weight',
    ],
    ['language_model.lm_head.weight', 'language_model.lm_head.weight'],
    ['temp', 'temp'],
    ['Qformer.cls.predictions.bias', 'Qformer.cls.predictions.bias'],
    ['embeddings.position_ids', undefined],
    ['qformer.encoder.layer.0.attention.self.query.weight', undefined],
    ['something_else.weight', undefined],
  ],
  'hf-instructblip': [
    ['qformer.embeddings.word_embeddings.weight', 'embeddings.word_embeddings.weight'],
    ['qformer.embeddings.position_embeddings.weight', 'embeddings.position_embeddings.weight'],
    ['qformer.embeddings.layernorm.weight', 'qformer.layernorm.weight'],
    ['qformer.embeddings.layernorm.bias', 'qformer.layernorm.bias'],
    ['qformer.embeddings.position_ids', undefined],
    ['qformer.encoder.layer.1.intermediate.dense.bias', 'qformer.encoder.layer.1.intermediate.dense.bias'],
    ['query_tokens', 'query_tokens'],
    ['language_projection.weight', 'language_projection.weight'],
    ['vision_model.post_layernorm.weight', 'vision_model.post_layernorm.weight'],
    [
      'language_model.encoder.block.0.layer.0.SelfAttention.q.weight',
      'language_model.encoder.block.0.layer.0.SelfAttention.q.weight',
    ],
    ['embeddings.word_embeddings.weight', undefined],
  ],
  lavis: [
    ['Qformer.bert.embeddings.word_embeddings.weight', 'embeddings.word_embeddings.weight'],
    ['Qformer.bert.embeddings.position_embeddings.weight', 'embeddings.position_embeddings.weight'],
    ['Qformer.bert.embeddings.LayerNorm.weight', 'qformer.layernorm.weight'],
    ['Qformer.bert.embeddings.position_ids', undefined],
    [
      'Qformer.bert.encoder.layer.2.attention.self.key.bias',
      'qformer.encoder.layer.2.attention.attention.key.bias',
    ],
    [
      'Qformer.bert.encoder.layer.2.crossattention.self.query.weight',
      'qformer.encoder.layer.2.crossattention.attention.query.weight',
    ],
    [
      'Qformer.bert.encoder.layer.2.crossattention.output.LayerNorm.bias',
      'qformer.encoder.layer.2.crossattention.output.LayerNorm.bias',
    ],
    [
      'Qformer.bert.encoder.layer.2.attention.output.dense.weight',
      'qformer.encoder.layer.2.attention.output.dense.weight',
    ],
    [
      'Qformer.bert.encoder.layer.2.intermediate_query.dense.weight',
      'qformer.encoder.layer.2.intermediate_query.dense.weight',
    ],
    [
      'Qformer.bert.encoder.layer.2.output.LayerNorm.weight',
      'qformer.encoder.layer.2.output.LayerNorm.weight',
    ],
    ['vision_proj.weight', 'vision_projection.weight'],
    ['text_proj.bias', 'text_projection.bias'],
    ['itm_head.weight', 'itm_head.weight'],
    ['query_tokens', 'query_tokens'],
    ['temp', 'temp'],
    ['Qformer.cls.predictions.transform.dense.weight', 'Qformer.cls.predictions.transform.dense.weight'],
    ['ln_vision.weight', 'vision_model.post_layernorm.weight'],
    ['visual_encoder.blocks.0.attn.qkv.weight', undefined],
    ['opt_model.lm_head.weight', undefined],
  ],
};

describe('checkpoint name maps', () => {
  for (const [layout, cases] of Object.entries(CASES) as [
    CheckpointLayout,
    [string, string | undefined][],
  ][]) {
    it(`${layout}: maps to canonical and back`, () => {
      for (const [name, canonical] of cases) {
        expect(toCanonicalName(layout, name), name).toBe(canonical);
        if (canonical !== undefined) {
          expect(isCanonicalName(canonical)).toBe(true);
          expect(fromCanonicalName(layout, canonical), canonical).toBe(name);
        }
      }
    });
  }

  it('fromCanonicalName returns undefined where the layout has no such tensor', () => {
    expect(fromCanonicalName('hf-instructblip', 'itm_head.weight')).toBeUndefined();
    expect(fromCanonicalName('lavis', 'language_model.lm_head.weight')).toBeUndefined();
    expect(fromCanonicalName('lavis', 'not.canonical')).toBeUndefined();
    expect(
      fromCanonicalName('hf-blip2', 'qformer.encoder.layer.x.attention.attention.query.weight'),
    ).toBeUndefined();
  });

  it('detects the layout', () => {
    expect(detectCheckpointLayout(['Qformer.bert.embeddings.word_embeddings.weight', 'query_tokens'])).toBe(
      'lavis',
    );
    expect(detectCheckpointLayout(['vision_proj.weight'])).toBe('lavis');
    expect(detectCheckpointLayout(['qformer.embeddings.layernorm.weight', 'query_tokens'])).toBe(
      'hf-instructblip',
    );
    expect(detectCheckpointLayout(['qformer.layernorm.weight', 'query_tokens'])).toBe('hf-blip2');
    expect(detectCheckpointLayout([])).toBe('hf-blip2');
  });

  it('mapCheckpointNames maps a whole checkpoint and reports what it drops', () => {
    const m = mapCheckpointNames([
      'Qformer.bert.embeddings.LayerNorm.bias',
      'Qformer.bert.embeddings.position_ids',
      'temp',
    ]);
    expect(m.layout).toBe('lavis');
    expect([...m.toCheckpoint]).toEqual([
      ['qformer.layernorm.bias', 'Qformer.bert.embeddings.LayerNorm.bias'],
      ['temp', 'temp'],
    ]);
    expect(m.unmapped).toEqual(['Qformer.bert.embeddings.position_ids']);
    const ib = mapCheckpointNames(['qformer.embeddings.layernorm.weight', 'qformer.layernorm.weight']);
    expect(ib.layout).toBe('hf-instructblip');
    expect([...ib.toCheckpoint.keys()]).toEqual(['qformer.layernorm.weight']);
    expect(ib.unmapped).toEqual(['qformer.layernorm.weight']);
  });
});
