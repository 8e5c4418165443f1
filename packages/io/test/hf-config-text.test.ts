import { describe, expect, it } from 'vitest';
import { parseModelConfig, stringifyHfConfig, toHfConfigJson } from '../src/index.js';

describe('stringifyHfConfig', () => {
  it('writes integer values of float-typed keys as N.0 (strict HF configs reject ints there)', () => {
    const text = stringifyHfConfig({
      initializer_factor: 1,
      num_query_tokens: 32,
      vision_config: { attention_dropout: 0, layer_norm_eps: 1e-6, hidden_size: 1408 },
      text_config: { dropout: 0.1 },
    });
    expect(text).toContain('"initializer_factor": 1.0');
    expect(text).toContain('"attention_dropout": 0.0');
    expect(text).toContain('"num_query_tokens": 32,');
    expect(text).toContain('"hidden_size": 1408');
    expect(text).toContain('"layer_norm_eps": 0.000001');
    expect(text).toContain('"dropout": 0.1');
    expect(JSON.parse(text).vision_config.attention_dropout).toBe(0);
  });

  it('round-trips a parsed BLIP-2 config', () => {
    const config = parseModelConfig({ model_type: 'blip-2', num_query_tokens: 4 });
    const json = toHfConfigJson(config);
    expect(JSON.parse(stringifyHfConfig(json))).toEqual(json);
  });
});
