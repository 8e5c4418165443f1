/**
 * Property-based tests of config parsing. Cases per property: `QF_FUZZ_RUNS` (default 200);
 * `pnpm fuzz` runs 20 000.
 *
 * Contract: `parseModelConfig` on any value either returns a config whose every modelled field is
 * in range (and which survives `toHfConfigJson` -> JSON -> `parseModelConfig` unchanged), or throws
 * `ConfigError` (code `CONFIG_INVALID`) naming the field. Never another exception.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  type ModelConfig,
  type QFormerConfig,
  isBlip2Config,
  parseModelConfig,
  stringifyHfConfig,
  toHfConfigJson,
} from '../src/index.js';
import { expectTypedError, fuzzParams, propertyTimeout } from './fixtures/fuzz.js';
import { GOLDEN_DIR, HAVE_GOLDEN } from './helpers.js';

const CASES = ['public_small', 'blip2_opt_tiny', 'blip2_t5_tiny', 'instructblip_tiny', 'stage1_losses'];
/** Real configs: every golden `hf/config.json` and the bare Q-Former `config.json` files beside them. */
const REAL: { name: string; json: Record<string, unknown> }[] = HAVE_GOLDEN
  ? CASES.flatMap((c) =>
      [join(c, 'hf', 'config.json'), join(c, 'config.json')]
        .filter((p) => existsSync(join(GOLDEN_DIR, p)))
        .map((p) => ({ name: p, json: JSON.parse(readFileSync(join(GOLDEN_DIR, p), 'utf8')) })),
    )
  : [];

const MAX_INT = 2 ** 31 - 1;
const posInt = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= MAX_INT;

function checkQFormer(q: QFormerConfig): void {
  for (const k of [
    'vocabSize',
    'hiddenSize',
    'numHiddenLayers',
    'numAttentionHeads',
    'intermediateSize',
    'maxPositionEmbeddings',
    'crossAttentionFrequency',
    'encoderHiddenSize',
  ] as const) {
    expect(posInt(q[k]), `qformer.${k} = ${q[k]}`).toBe(true);
  }
  expect(q.hiddenSize % q.numAttentionHeads).toBe(0);
  expect(q.hiddenAct).toBe('gelu');
  expect(q.positionEmbeddingType).toBe('absolute');
  expect(q.hiddenDropoutProb >= 0 && q.hiddenDropoutProb <= 1).toBe(true);
  expect(q.attentionProbsDropoutProb >= 0 && q.attentionProbsDropoutProb <= 1).toBe(true);
  expect(q.layerNormEps > 0 && q.layerNormEps <= 1).toBe(true);
  expect(Number.isFinite(q.initializerRange) && q.initializerRange >= 0).toBe(true);
  expect(
    q.padTokenId === null ||
      (Number.isInteger(q.padTokenId) && q.padTokenId >= 0 && q.padTokenId < q.vocabSize),
  ).toBe(true);
  expect(typeof q.useQformerTextInput).toBe('boolean');
}

/** Every modelled field of a parsed config is in range. */
function checkParsed(c: ModelConfig): void {
  checkQFormer(c.qformer);
  expect(posInt(c.numQueryTokens)).toBe(true);
  if (isBlip2Config(c)) {
    const v = c.vision;
    for (const k of [
      'hiddenSize',
      'intermediateSize',
      'numAttentionHeads',
      'imageSize',
      'patchSize',
    ] as const) {
      expect(posInt(v[k]), `vision.${k} = ${v[k]}`).toBe(true);
    }
    expect(Number.isInteger(v.numHiddenLayers) && v.numHiddenLayers >= 0).toBe(true);
    expect(v.hiddenSize % v.numAttentionHeads).toBe(0);
    expect(v.patchSize).toBeLessThanOrEqual(v.imageSize);
    expect(c.qformer.encoderHiddenSize).toBe(v.hiddenSize);
    expect(posInt(c.imageTextHiddenSize)).toBe(true);
    expect(
      c.imageTokenIndex === null || (Number.isInteger(c.imageTokenIndex) && c.imageTokenIndex >= 0),
    ).toBe(true);
    if (c.text !== undefined) {
      expect(typeof c.text.modelType).toBe('string');
      expect(posInt(c.text.hiddenSize), `text.hiddenSize = ${c.text.hiddenSize}`).toBe(true);
    }
    expect(typeof c.useDecoderOnlyLanguageModel).toBe('boolean');
    if (c.modelType === 'instructblip') expect(c.qformer.useQformerTextInput).toBe(true);
  } else {
    if (c.imageTextHiddenSize !== undefined) expect(posInt(c.imageTextHiddenSize)).toBe(true);
    if (c.languageProjectionOutFeatures !== undefined)
      expect(posInt(c.languageProjectionOutFeatures)).toBe(true);
  }
}

/**
 * The config without `raw` (and without `text.raw`): what a round trip must preserve. JSON has no
 * -0 (it is written as 0), so -0 is compared as 0.
 */
function modelled(c: ModelConfig): unknown {
  const { raw: _raw, ...rest } = c as ModelConfig & { text?: { raw: unknown } };
  const out =
    'text' in rest && rest.text !== undefined
      ? { ...rest, text: (({ raw: _t, ...text }) => text)(rest.text as { raw: unknown }) }
      : rest;
  return JSON.parse(JSON.stringify(out, (_k, v) => (Object.is(v, -0) ? 0 : v)));
}

/**
 * Parses `json`: a ConfigError naming its field, or a config in range that round-trips through its
 * HF JSON (`roundTrip` only for inputs that are JSON, since the raw keys are written back).
 */
function checkParse(json: unknown, roundTrip: boolean): 'ok' | string {
  let c: ModelConfig;
  try {
    c = parseModelConfig(json);
  } catch (err) {
    expectTypedError(err, ['CONFIG_INVALID']);
    expect(err).toBeInstanceOf(ConfigError);
    const field = (err as ConfigError).field;
    expect(typeof field).toBe('string');
    expect(field.length).toBeGreaterThan(0);
    expect(err.message).toContain(`"${field}"`);
    expect(err.message.length).toBeLessThan(600);
    return field;
  }
  checkParsed(c);
  if (roundTrip) {
    const again = parseModelConfig(JSON.parse(stringifyHfConfig(toHfConfigJson(c))));
    expect(modelled(again)).toEqual(modelled(c));
  }
  return 'ok';
}

/** Values to put in a config field: plausible, hostile, and (flagged) not representable in JSON. */
const valueArb: fc.Arbitrary<{ value: unknown; json: boolean }> = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }).map((value) => ({ value, json: true })),
  fc
    .constantFrom<unknown>(
      0,
      -1,
      1,
      2,
      3,
      7,
      64,
      1.5,
      1e-12,
      2 ** 31 - 1,
      2 ** 31,
      2 ** 53,
      1e308,
      -0,
      '',
      'gelu',
      'relu',
      'absolute',
      'relative_key',
      '__proto__',
      'constructor',
      'toString',
      'hasOwnProperty',
      'opt',
      't5',
      'llama',
      'blip-2',
      'instructblip',
      'blip_2_qformer',
      'instructblip_qformer',
      null,
      [],
      {},
      true,
      false,
    )
    .map((value) => ({ value, json: true })),
  fc.integer({ min: -5, max: 5000 }).map((value) => ({ value, json: true })),
  fc
    .constantFrom<unknown>(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, undefined, 10n)
    .map((value) => ({ value, json: false })),
  // deep nesting, built when applied (fast-check would overflow the stack printing it); flagged
  // non-JSON only because writing it back (JSON.stringify) is out of scope here
  fc.integer({ min: 1, max: 60_000 }).map((depth) => ({ value: { deep: depth }, json: false })),
);

const nested = (depth: number): unknown => JSON.parse(`${'['.repeat(depth)}${']'.repeat(depth)}`);
const isDeep = (v: unknown): v is { deep: number } =>
  typeof v === 'object' &&
  v !== null &&
  typeof (v as { deep?: unknown }).deep === 'number' &&
  Object.keys(v).length === 1;

type Path = string[];

/** Every key path of a JSON object (objects only, arrays are leaves). */
function paths(obj: unknown, prefix: Path = []): Path[] {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return [];
  const out: Path[] = [];
  for (const k of Object.keys(obj)) {
    out.push([...prefix, k]);
    out.push(...paths((obj as Record<string, unknown>)[k], [...prefix, k]));
  }
  return out;
}

const KNOWN_KEYS = [
  'model_type',
  'hidden_size',
  'num_attention_heads',
  'num_hidden_layers',
  'intermediate_size',
  'vocab_size',
  'pad_token_id',
  'max_position_embeddings',
  'cross_attention_frequency',
  'encoder_hidden_size',
  'use_qformer_text_input',
  'hidden_act',
  'position_embedding_type',
  'layer_norm_eps',
  'image_size',
  'patch_size',
  'd_model',
  'text_config',
  'vision_config',
  'qformer_config',
  'num_query_tokens',
  'image_text_hidden_size',
  'use_decoder_only_language_model',
  '__proto__',
];

const editArb = fc.record({
  op: fc.constantFrom('set', 'delete', 'add', 'scale'),
  pick: fc.nat(),
  key: fc.oneof(fc.constantFrom(...KNOWN_KEYS), fc.string({ maxLength: 6 })),
  value: valueArb,
  factor: fc.constantFrom(0, -1, 0.5, 2, 3, 1000),
});

type Edit = typeof editArb extends fc.Arbitrary<infer E> ? E : never;

/** Applies edits to a deep copy of `json`; reports whether the result is still plain JSON. */
function applyEdits(json: Record<string, unknown>, edits: Edit[]): { value: unknown; json: boolean } {
  const root = structuredClone(json);
  let isJson = true;
  for (const e of edits) {
    const all = paths(root);
    const path = all.length === 0 ? [] : all[e.pick % all.length]!;
    const parentPath = e.op === 'add' ? path : path.slice(0, -1);
    let parent: unknown = root;
    for (const k of parentPath) parent = (parent as Record<string, unknown>)[k];
    if (typeof parent !== 'object' || parent === null || Array.isArray(parent)) continue;
    const obj = parent as Record<string, unknown>;
    const key = e.op === 'add' ? e.key : path[path.length - 1];
    if (key === undefined) continue;
    if (e.op === 'delete') delete obj[key];
    else if (e.op === 'scale') {
      const v = obj[key];
      if (typeof v === 'number') obj[key] = v * e.factor;
    } else {
      // defineProperty: a key "__proto__" becomes an own property, as JSON.parse makes it
      const value = !e.value.json && isDeep(e.value.value) ? nested(e.value.value.deep) : e.value.value;
      Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
      isJson &&= e.value.json;
    }
  }
  return { value: root, json: isJson };
}

describe('fuzz: config parsing', () => {
  it('the real configs parse, in range, and round-trip', () => {
    if (!HAVE_GOLDEN) return;
    expect(REAL.length).toBeGreaterThanOrEqual(CASES.length);
    for (const { name, json } of REAL) expect(checkParse(json, true), name).toBe('ok');
  });

  it(
    'any JSON value: a config in range or a ConfigError naming the field',
    () => {
      fc.assert(
        fc.property(
          fc.oneof(
            fc.jsonValue({ maxDepth: 3 }),
            fc.record(
              {
                model_type: fc.constantFrom(
                  'blip-2',
                  'instructblip',
                  'blip_2_qformer',
                  'instructblip_qformer',
                ),
                hidden_size: fc.jsonValue({ maxDepth: 1 }),
                num_attention_heads: fc.jsonValue({ maxDepth: 1 }),
                qformer_config: fc.jsonValue({ maxDepth: 2 }),
                vision_config: fc.jsonValue({ maxDepth: 2 }),
                text_config: fc.jsonValue({ maxDepth: 2 }),
              },
              { requiredKeys: ['model_type'] },
            ),
          ),
          (json) => {
            checkParse(json, true);
          },
        ),
        fuzzParams(),
      );
    },
    propertyTimeout(),
  );

  it(
    'mutations of real configs (delete, set, add, scale; hostile and non-JSON values)',
    () => {
      if (!HAVE_GOLDEN) return;
      const outcomes = new Set<string>();
      fc.assert(
        fc.property(
          fc.constantFrom(...REAL),
          fc.array(editArb, { minLength: 1, maxLength: 3 }),
          ({ json }, edits) => {
            const { value, json: isJson } = applyEdits(json, edits);
            outcomes.add(checkParse(value, isJson));
          },
        ),
        fuzzParams(),
      );
      expect(outcomes.has('ok')).toBe(true);
      expect(outcomes.size).toBeGreaterThan(3);
    },
    propertyTimeout(),
  );

  it('an LM model_type naming an Object.prototype member is not taken for a known LM', () => {
    for (const type of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf']) {
      const json = JSON.parse(
        `{"model_type": "blip-2", "text_config": {"model_type": ${JSON.stringify(type)}}}`,
      );
      const err = (() => {
        try {
          return parseModelConfig(json);
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).field).toBe('text_config.hidden_size');
      // with a width it parses, and the width is kept
      const ok = parseModelConfig({
        model_type: 'blip-2',
        text_config: { model_type: type, hidden_size: 8 },
      });
      expect(isBlip2Config(ok) && ok.text?.hiddenSize).toBe(8);
    }
  });

  it('deeply nested and non-JSON values give a ConfigError, not a stack overflow or TypeError', () => {
    const deep = JSON.parse(`${'['.repeat(100_000)}${']'.repeat(100_000)}`);
    const bad: unknown[] = [
      { model_type: deep },
      { model_type: 'blip_2_qformer', hidden_size: deep },
      { model_type: 'blip-2', vision_config: deep },
      { model_type: 10n },
      { model_type: 'blip_2_qformer', hidden_size: 10n },
      { model_type: 'blip_2_qformer', layer_norm_eps: Number.NaN },
      deep,
      10n,
    ];
    for (const json of bad) {
      let err: unknown;
      try {
        parseModelConfig(json);
      } catch (e) {
        err = e;
      }
      expectTypedError(err, ['CONFIG_INVALID']);
      expect(err.message.length).toBeLessThan(400);
    }
  });

  it('a key holding undefined (a JS object, not JSON) counts as absent, never as 0', () => {
    const bare = parseModelConfig({ model_type: 'blip_2_qformer', image_text_hidden_size: undefined });
    expect(bare.modelType === 'blip_2_qformer' && bare.imageTextHiddenSize).toBeUndefined();
    const t5 = parseModelConfig({
      model_type: 'blip-2',
      text_config: { model_type: 't5', d_model: undefined },
    });
    expect(isBlip2Config(t5) && t5.text?.hiddenSize).toBe(512);
  });

  it('stringifyHfConfig writes float keys with huge integer values as valid JSON', () => {
    const text = stringifyHfConfig({ initializer_factor: 1e308, initializer_range: 1e21, layer_norm_eps: 1 });
    expect(JSON.parse(text)).toEqual({
      initializer_factor: 1e308,
      initializer_range: 1e21,
      layer_norm_eps: 1,
    });
    expect(text).toContain('"layer_norm_eps": 1.0');
  });
});
