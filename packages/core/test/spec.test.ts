import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openCheckpointDir } from '@qf/io/node';
import { describe, expect, it } from 'vitest';
import { qformerModelConfigFromJson } from '../src/config.js';
import { initParams } from '../src/init.js';
import { qformerParamSpecs } from '../src/spec.js';

const golden = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../../shared/golden');

describe('parameter specs', () => {
  it('match the names and shapes of the HF retrieval checkpoint exactly', async () => {
    const { config, checkpoint } = await openCheckpointDir(join(golden, 'public_small/hf'));
    try {
      const c = qformerModelConfigFromJson(config);
      const specs = qformerParamSpecs({
        qformer: c.qformer,
        numQueryTokens: c.numQueryTokens,
        textPath: true,
        retrievalHeads: { imageTextHiddenSize: c.imageTextHiddenSize! },
        languageProjection: { outFeatures: c.languageProjectionOutFeatures! },
      });
      const fromFile = Object.fromEntries(checkpoint.names().map((n) => [n, [...checkpoint.info(n)!.shape]]));
      const fromSpec = Object.fromEntries(specs.map((s) => [s.name, [...s.shape]]));
      expect(fromSpec).toEqual(fromFile);
    } finally {
      await checkpoint.close();
    }
  });

  it('cover the Q-Former of a conditional-generation checkpoint (no text path, no heads)', async () => {
    const { config, checkpoint } = await openCheckpointDir(join(golden, 'blip2_opt_tiny/hf'));
    try {
      const c = qformerModelConfigFromJson(config);
      const specs = qformerParamSpecs({
        qformer: c.qformer,
        numQueryTokens: c.numQueryTokens,
        textPath: false,
      });
      for (const s of specs)
        expect([...(checkpoint.info(s.name)?.shape ?? [])], s.name).toEqual([...s.shape]);
      const qformerNames = checkpoint.names().filter((n) => n.startsWith('qformer.') || n === 'query_tokens');
      expect(specs.map((s) => s.name).sort()).toEqual(qformerNames.sort());
    } finally {
      await checkpoint.close();
    }
  });
});

describe('initParams', () => {
  const spec = {
    qformer: qformerModelConfigFromJson({
      model_type: 'blip_2_qformer',
      hidden_size: 16,
      num_attention_heads: 2,
      num_hidden_layers: 2,
      intermediate_size: 32,
      encoder_hidden_size: 8,
      vocab_size: 20,
      max_position_embeddings: 8,
    }).qformer,
    numQueryTokens: 3,
    textPath: true,
  };
  it('is deterministic per seed and differs across seeds', () => {
    const specs = qformerParamSpecs(spec);
    const a = initParams(specs, { seed: 1, scheme: 'stress' });
    const b = initParams(specs, { seed: 1, scheme: 'stress' });
    const c = initParams(specs, { seed: 2, scheme: 'stress' });
    const name = 'qformer.encoder.layer.1.attention.attention.key.weight';
    expect(a.get(name)!.data).toEqual(b.get(name)!.data);
    expect(a.get(name)!.data).not.toEqual(c.get(name)!.data);
  });
  it('follows the HF scheme: zero biases, unit LayerNorm, N(0, 0.02) weights', () => {
    const t = initParams(qformerParamSpecs(spec), { seed: 3, scheme: 'hf' });
    expect(Array.from(t.get('qformer.layernorm.weight')!.data)).toEqual(new Array(16).fill(1));
    expect(Array.from(t.get('qformer.encoder.layer.0.intermediate.dense.bias')!.data)).toEqual(
      new Array(32).fill(0),
    );
    const w = t.get('qformer.encoder.layer.0.intermediate.dense.weight')!.data as Float32Array;
    const std = Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length);
    expect(std).toBeGreaterThan(0.015);
    expect(std).toBeLessThan(0.025);
  });
});
