/**
 * Bad input at every public entry of `QFormerModel` (`run`, `extractFeatures`, `encodeText`, `score`,
 * `rerank`): wrong rank, shape or dtype, NaN/Inf, empty batch, ids out of vocabulary, text longer than
 * max_position_embeddings, mismatched batch sizes, malformed tensors. Every case must throw a typed
 * error (class and code) whose message names the argument and states expected vs actual, before any
 * backend work (no tensors left behind).
 */
import {
  type QFormerModel,
  type QFormerModelSpec,
  initParams,
  qformerModelConfigFromJson,
  qformerParamSpecs,
  QFormerModel as Model,
} from '@qf/core';
import { createTfjsBackend } from '@qf/backends/tfjs';
import { type HostTensor, QfError, TensorError } from '@qf/io';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const VOCAB = 30;
const MAX_POS = 16;
const ENC = 6;

function makeSpec(over: Partial<QFormerModelSpec> = {}): QFormerModelSpec {
  const qformer = qformerModelConfigFromJson({
    model_type: 'blip_2_qformer',
    hidden_size: 8,
    num_attention_heads: 2,
    num_hidden_layers: 2,
    intermediate_size: 16,
    cross_attention_frequency: 1,
    encoder_hidden_size: ENC,
    vocab_size: VOCAB,
    max_position_embeddings: MAX_POS,
  }).qformer;
  return {
    qformer,
    numQueryTokens: 3,
    textPath: true,
    retrievalHeads: { imageTextHiddenSize: 4 },
    languageProjection: { outFeatures: 5 },
    ...over,
  };
}

const f32 = (shape: number[], fill = 0.5): HostTensor => ({
  dtype: 'F32',
  shape,
  data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(fill),
});
const i32 = (shape: number[], fill = 1): HostTensor => ({
  dtype: 'I32',
  shape,
  data: new Int32Array(shape.reduce((a, b) => a * b, 1)).fill(fill),
});
/** `t` with element `flat` set to `v` (a copy). */
function withValue(t: HostTensor, flat: number, v: number): HostTensor {
  const data = (t.data as Float32Array).slice();
  data[flat] = v;
  return { ...t, data } as HostTensor;
}

const IMG = f32([2, 3, ENC]);
const IDS = i32([2, 4]);

interface Case {
  what: string;
  call: (m: QFormerModel<tf.Tensor>) => Promise<unknown>;
  code: string;
  /** The argument the message must name. */
  tensor: string;
  expected: string;
  actual: string;
  /** Error class (default TensorError). */
  cls?: typeof QfError;
}

const cases: Case[] = [
  // ----- run(): rank, shape, dtype ---------------------------------------------------------------
  {
    what: 'run: image_embeds of rank 2',
    call: (m) => m.run({ image_embeds: f32([2, ENC]) }),
    code: 'TENSOR_SHAPE',
    tensor: 'image_embeds',
    expected: `[B, N, ${ENC}]`,
    actual: `[2, ${ENC}]`,
  },
  {
    what: 'run: image_embeds of rank 4',
    call: (m) => m.run({ image_embeds: f32([1, 2, 3, ENC]) }),
    code: 'TENSOR_SHAPE',
    tensor: 'image_embeds',
    expected: `[B, N, ${ENC}]`,
    actual: `[1, 2, 3, ${ENC}]`,
  },
  {
    what: 'run: image_embeds of the wrong width',
    call: (m) => m.run({ image_embeds: f32([2, 3, ENC + 1]) }),
    code: 'TENSOR_SHAPE',
    tensor: 'image_embeds',
    expected: `[B, N, ${ENC}]`,
    actual: `[2, 3, ${ENC + 1}]`,
  },
  {
    what: 'run: integer image_embeds',
    call: (m) => m.run({ image_embeds: i32([2, 3, ENC]) }),
    code: 'TENSOR_DTYPE',
    tensor: 'image_embeds',
    expected: 'F32 | F16 | BF16 | F64',
    actual: 'I32',
  },
  {
    what: 'run: float input_ids',
    call: (m) => m.run({ input_ids: f32([2, 4]) }),
    code: 'TENSOR_DTYPE',
    tensor: 'input_ids',
    expected: 'I64 | I32',
    actual: 'F32',
  },
  {
    what: 'run: input_ids of rank 1',
    call: (m) => m.run({ input_ids: i32([4]) }),
    code: 'TENSOR_SHAPE',
    tensor: 'input_ids',
    expected: '[B, T]',
    actual: '[4]',
  },
  {
    what: 'run: attention_mask shaped unlike input_ids',
    call: (m) => m.run({ input_ids: IDS, attention_mask: i32([2, 3]) }),
    code: 'TENSOR_SHAPE',
    tensor: 'attention_mask',
    expected: '[2, 4]',
    actual: '[2, 3]',
  },
  {
    what: 'run: float attention_mask with a 2',
    call: (m) => m.run({ input_ids: IDS, attention_mask: f32([2, 4], 2) }),
    code: 'TENSOR_VALUE',
    tensor: 'attention_mask',
    expected: '0 | 1',
    actual: '2',
  },
  {
    what: 'run: image_attention_mask NaN',
    call: (m) => m.run({ image_embeds: IMG, image_attention_mask: withValue(f32([2, 3], 1), 4, Number.NaN) }),
    code: 'TENSOR_VALUE',
    tensor: 'image_attention_mask',
    expected: '0 | 1',
    actual: 'NaN',
  },
  // ----- NaN / Inf --------------------------------------------------------------------------------
  {
    what: 'run: NaN in F32 image_embeds',
    call: (m) => m.run({ image_embeds: withValue(IMG, 1 * 3 * ENC + 2 * ENC + 5, Number.NaN) }),
    code: 'TENSOR_VALUE',
    tensor: 'image_embeds',
    expected: 'finite numbers',
    actual: 'NaN at [1, 2, 5]',
  },
  {
    what: 'run: +Inf in F32 image_embeds',
    call: (m) => m.run({ image_embeds: withValue(IMG, 0, Number.POSITIVE_INFINITY) }),
    code: 'TENSOR_VALUE',
    tensor: 'image_embeds',
    expected: 'finite numbers',
    actual: 'Infinity at [0, 0, 0]',
  },
  {
    what: 'run: -Inf in F64 image_embeds',
    call: (m) =>
      m.run({
        image_embeds: { dtype: 'F64', shape: [1, 1, ENC], data: Float64Array.of(0, 0, 0, -Infinity, 0, 0) },
      }),
    code: 'TENSOR_VALUE',
    tensor: 'image_embeds',
    expected: 'finite numbers',
    actual: '-Infinity at [0, 0, 3]',
  },
  {
    what: 'run: NaN in F16 image_embeds',
    call: (m) =>
      m.run({
        image_embeds: { dtype: 'F16', shape: [1, 1, ENC], data: Uint16Array.of(0x3c00, 0x7e00, 0, 0, 0, 0) },
      }),
    code: 'TENSOR_VALUE',
    tensor: 'image_embeds',
    expected: 'finite numbers',
    actual: 'NaN at [0, 0, 1]',
  },
  {
    what: 'run: Inf in BF16 image_embeds',
    call: (m) =>
      m.run({
        image_embeds: { dtype: 'BF16', shape: [1, 1, ENC], data: Uint16Array.of(0, 0, 0, 0, 0, 0x7f80) },
      }),
    code: 'TENSOR_VALUE',
    tensor: 'image_embeds',
    expected: 'finite numbers',
    actual: 'Infinity at [0, 0, 5]',
  },
  // ----- empty ------------------------------------------------------------------------------------
  {
    what: 'run: empty image batch',
    call: (m) => m.run({ image_embeds: f32([0, 3, ENC]) }),
    code: 'TENSOR_SHAPE',
    tensor: 'image_embeds',
    expected: 'batch >= 1',
    actual: '0',
  },
  {
    what: 'run: images without tokens',
    call: (m) => m.run({ image_embeds: f32([2, 0, ENC]) }),
    code: 'TENSOR_SHAPE',
    tensor: 'image_embeds',
    expected: 'image tokens >= 1',
    actual: '0',
  },
  {
    what: 'run: empty text batch',
    call: (m) => m.run({ input_ids: i32([0, 4]) }),
    code: 'TENSOR_SHAPE',
    tensor: 'input_ids',
    expected: 'batch >= 1',
    actual: '0',
  },
  {
    what: 'run: empty texts',
    call: (m) => m.run({ input_ids: i32([2, 0]) }),
    code: 'TENSOR_SHAPE',
    tensor: 'input_ids',
    expected: `1..${MAX_POS}`,
    actual: '0',
  },
  // ----- vocabulary and length --------------------------------------------------------------------
  {
    what: 'run: a negative token id',
    call: (m) => m.run({ input_ids: { dtype: 'I32', shape: [2, 2], data: Int32Array.of(1, 2, -1, 3) } }),
    code: 'TENSOR_VALUE',
    tensor: 'input_ids',
    expected: `0..${VOCAB - 1}`,
    actual: '-1 at [1, 0]',
  },
  {
    what: 'run: a token id equal to vocab_size',
    call: (m) =>
      m.run({ input_ids: { dtype: 'I64', shape: [1, 3], data: BigInt64Array.of(1n, 2n, BigInt(VOCAB)) } }),
    code: 'TENSOR_VALUE',
    tensor: 'input_ids',
    expected: `0..${VOCAB - 1}`,
    actual: `${VOCAB} at [0, 2]`,
  },
  {
    what: 'run: an I64 token id beyond int32',
    call: (m) => m.run({ input_ids: { dtype: 'I64', shape: [1, 2], data: BigInt64Array.of(1n, 2n ** 40n) } }),
    code: 'TENSOR_VALUE',
    tensor: 'input_ids',
    expected: '-2147483648..2147483647',
    actual: String(2n ** 40n),
  },
  {
    what: 'run: text longer than max_position_embeddings',
    call: (m) => m.run({ input_ids: i32([1, MAX_POS + 1]) }),
    code: 'TENSOR_SHAPE',
    tensor: 'input_ids',
    expected: `1..${MAX_POS}`,
    actual: String(MAX_POS + 1),
  },
  // ----- batch sizes ------------------------------------------------------------------------------
  {
    what: 'run: 2 images, 3 texts',
    call: (m) => m.run({ image_embeds: IMG, input_ids: i32([3, 4]) }),
    code: 'TENSOR_SHAPE',
    tensor: 'input_ids',
    expected: '[2, T]',
    actual: '[3, 4]',
  },
  {
    what: 'run: image_attention_mask batch differs from image_embeds',
    call: (m) => m.run({ image_embeds: IMG, image_attention_mask: i32([3, 3]) }),
    code: 'TENSOR_SHAPE',
    tensor: 'image_attention_mask',
    expected: '[2, 3]',
    actual: '[3, 3]',
  },
  // ----- malformed tensors and records ------------------------------------------------------------
  {
    what: 'run: data shorter than the shape',
    call: (m) => m.run({ image_embeds: { dtype: 'F32', shape: [2, 3, ENC], data: new Float32Array(5) } }),
    code: 'TENSOR_SHAPE',
    tensor: 'image_embeds',
    expected: `${2 * 3 * ENC} elements`,
    actual: '5 elements',
  },
  {
    what: 'run: data of another dtype than declared',
    call: (m) =>
      m.run({
        image_embeds: {
          dtype: 'F32',
          shape: [1, 1, ENC],
          data: new Int32Array(ENC),
        } as unknown as HostTensor,
      }),
    code: 'TENSOR_DTYPE',
    tensor: 'image_embeds',
    expected: 'Float32Array',
    actual: 'Int32Array',
  },
  {
    what: 'run: a bare typed array instead of a tensor',
    call: (m) => m.run({ image_embeds: new Float32Array(12) as unknown as HostTensor }),
    code: 'TENSOR_DTYPE',
    tensor: 'image_embeds',
    expected: '{dtype, shape, data}',
    actual: 'Float32Array',
  },
  {
    what: 'run: an unknown dtype',
    call: (m) =>
      m.run({ image_embeds: { dtype: 'F8', shape: [1], data: new Uint8Array(1) } as unknown as HostTensor }),
    code: 'TENSOR_DTYPE',
    tensor: 'image_embeds',
    expected: 'F32|F16|BF16|F64|I64|I32|I16|I8|U8|BOOL',
    actual: 'F8',
  },
  {
    what: 'run: a negative dimension',
    call: (m) => m.run({ image_embeds: { dtype: 'F32', shape: [1, -1, ENC], data: new Float32Array(0) } }),
    code: 'TENSOR_SHAPE',
    tensor: 'image_embeds',
    expected: 'an array of non-negative integers',
    actual: `[1,-1,${ENC}]`,
  },
  {
    what: 'run: null instead of the input record',
    call: (m) => m.run(null as unknown as Record<string, HostTensor>),
    code: 'TENSOR_MISSING',
    tensor: 'inputs',
    expected: '{ image_embeds, image_attention_mask, input_ids, attention_mask }',
    actual: 'null',
  },
  // ----- the other entry points -------------------------------------------------------------------
  {
    what: 'extractFeatures: rank 2',
    call: (m) => m.extractFeatures(f32([3, ENC])),
    code: 'TENSOR_SHAPE',
    tensor: 'image_embeds',
    expected: `[B, N, ${ENC}]`,
    actual: `[3, ${ENC}]`,
  },
  {
    what: 'extractFeatures: NaN',
    call: (m) => m.extractFeatures(withValue(IMG, 7, Number.NaN)),
    code: 'TENSOR_VALUE',
    tensor: 'image_embeds',
    expected: 'finite numbers',
    actual: 'NaN at [0, 1, 1]',
  },
  {
    what: 'extractFeatures: empty batch',
    call: (m) => m.extractFeatures(f32([0, 3, ENC])),
    code: 'TENSOR_SHAPE',
    tensor: 'image_embeds',
    expected: 'batch >= 1',
    actual: '0',
  },
  {
    what: 'extractFeatures: image mask of another batch',
    call: (m) => m.extractFeatures(IMG, i32([1, 3])),
    code: 'TENSOR_SHAPE',
    tensor: 'image_attention_mask',
    expected: '[2, 3]',
    actual: '[1, 3]',
  },
  {
    what: 'encodeText: id out of vocabulary',
    call: (m) => m.encodeText({ dtype: 'I32', shape: [1, 2], data: Int32Array.of(0, VOCAB + 5) }),
    code: 'TENSOR_VALUE',
    tensor: 'input_ids',
    expected: `0..${VOCAB - 1}`,
    actual: `${VOCAB + 5} at [0, 1]`,
  },
  {
    what: 'encodeText: too long',
    call: (m) => m.encodeText(i32([2, MAX_POS + 4])),
    code: 'TENSOR_SHAPE',
    tensor: 'input_ids',
    expected: `1..${MAX_POS}`,
    actual: String(MAX_POS + 4),
  },
  {
    what: 'encodeText: empty batch',
    call: (m) => m.encodeText(i32([0, 3])),
    code: 'TENSOR_SHAPE',
    tensor: 'input_ids',
    expected: 'batch >= 1',
    actual: '0',
  },
  {
    what: 'encodeText: mask of another batch',
    call: (m) => m.encodeText(IDS, i32([3, 4])),
    code: 'TENSOR_SHAPE',
    tensor: 'attention_mask',
    expected: '[2, 4]',
    actual: '[3, 4]',
  },
  {
    what: 'score: 2 images, 3 texts',
    call: (m) => m.score(IMG, i32([3, 4])),
    code: 'TENSOR_SHAPE',
    tensor: 'input_ids',
    expected: '[2, T]',
    actual: '[3, 4]',
  },
  {
    what: 'score: Inf in the images',
    call: (m) => m.score(withValue(IMG, 0, Number.NEGATIVE_INFINITY), IDS),
    code: 'TENSOR_VALUE',
    tensor: 'image_embeds',
    expected: 'finite numbers',
    actual: '-Infinity at [0, 0, 0]',
  },
  {
    what: 'score: ids out of vocabulary',
    call: (m) => m.score(IMG, i32([2, 4], VOCAB)),
    code: 'TENSOR_VALUE',
    tensor: 'input_ids',
    expected: `0..${VOCAB - 1}`,
    actual: `${VOCAB} at [0, 0]`,
  },
  {
    what: 'score: texts too long',
    call: (m) => m.score(IMG, i32([2, MAX_POS + 1])),
    code: 'TENSOR_SHAPE',
    tensor: 'input_ids',
    expected: `1..${MAX_POS}`,
    actual: String(MAX_POS + 1),
  },
  {
    what: 'rerank: 2 images against 3 texts',
    call: (m) => m.rerank(IMG, i32([3, 4])),
    code: 'TENSOR_SHAPE',
    tensor: 'input_ids',
    expected: '[2, T]',
    actual: '[3, 4]',
  },
  {
    what: 'rerank: empty text batch',
    call: (m) => m.rerank(f32([1, 3, ENC]), i32([0, 4])),
    code: 'TENSOR_SHAPE',
    tensor: 'input_ids',
    expected: 'batch >= 1',
    actual: '0',
  },
  {
    what: 'rerank: image of the wrong dtype',
    call: (m) => m.rerank({ dtype: 'I64', shape: [1, 3, ENC], data: new BigInt64Array(3 * ENC) }, IDS),
    code: 'TENSOR_DTYPE',
    tensor: 'image_embeds',
    expected: 'F32 | F16 | BF16 | F64',
    actual: 'I64',
  },
  {
    what: 'rerank: text mask of another shape',
    call: (m) => m.rerank(f32([1, 3, ENC]), IDS, i32([2, 5])),
    code: 'TENSOR_SHAPE',
    tensor: 'attention_mask',
    expected: '[2, 4]',
    actual: '[2, 5]',
  },
];

function expectTyped(err: unknown, c: Case): void {
  const cls = c.cls ?? TensorError;
  expect(err, `${c.what}: ${String(err)}`).toBeInstanceOf(cls);
  const e = err as TensorError;
  expect(e.code).toBe(c.code);
  expect(e.tensor).toBe(c.tensor);
  expect(e.message).toContain(`"${c.tensor}"`);
  expect(e.expected).toBe(c.expected);
  expect(e.actual).toBe(c.actual);
  expect(e.message).toContain(`expected ${c.expected}, got ${c.actual}`);
}

describe('bad input at every public entry of QFormerModel', () => {
  let model: QFormerModel<tf.Tensor>;
  beforeAll(async () => {
    const spec = makeSpec();
    model = Model.fromTensors(
      await createTfjsBackend('cpu'),
      spec,
      initParams(qformerParamSpecs(spec), { seed: 1 }),
    );
  });
  afterAll(() => model.dispose());

  it('valid inputs run on every entry (so the errors below come from the inputs)', async () => {
    const out = await model.run({ image_embeds: IMG, input_ids: IDS, attention_mask: i32([2, 4]) });
    expect(out['itm_logits']?.shape).toEqual([2, 2]);
    expect((await model.extractFeatures(IMG)).queryOutput.shape).toEqual([2, 3, 8]);
    expect((await model.encodeText(i32([2, MAX_POS]))).textOutput.shape).toEqual([2, MAX_POS, 8]);
    expect((await model.score(IMG, IDS)).itc.shape).toEqual([2, 2]);
    expect((await model.rerank(f32([1, 3, ENC]), i32([3, 4]))).itm.shape).toEqual([3, 2]);
  });

  for (const c of cases) {
    it(c.what, async () => {
      const before = tf.memory().numTensors;
      const err = await c.call(model).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, `${c.what} did not throw`).toBeDefined();
      expectTyped(err, c);
      expect(tf.memory().numTensors).toBe(before); // rejected before any backend work
    });
  }

  it('an unknown input name is TENSOR_UNEXPECTED naming it, with the names expected', async () => {
    const err = await model.run({ image_embeds: IMG, pixel_values: IMG }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TensorError);
    expect((err as TensorError).code).toBe('TENSOR_UNEXPECTED');
    expect((err as TensorError).tensor).toBe('pixel_values');
    expect((err as Error).message).toMatch(
      /"pixel_values": unknown input; expected one of image_embeds, image_attention_mask, input_ids, attention_mask/,
    );
  });

  it('a missing argument is TENSOR_MISSING naming it', async () => {
    const cases: [() => Promise<unknown>, string][] = [
      [() => model.run({}), 'image_embeds'],
      [() => model.extractFeatures(undefined as unknown as HostTensor), 'image_embeds'],
      [() => model.encodeText(undefined as unknown as HostTensor), 'input_ids'],
      [() => model.score(IMG, undefined as unknown as HostTensor), 'input_ids'],
      [() => model.score(undefined as unknown as HostTensor, IDS), 'image_embeds'],
      [() => model.rerank(IMG, undefined as unknown as HostTensor), 'input_ids'],
      [() => model.run({ input_ids: IDS }, { itmOnly: true }), 'image_embeds'],
      [() => model.run({ image_attention_mask: i32([2, 3]), input_ids: IDS }), 'image_embeds'],
      [() => model.run({ attention_mask: i32([2, 4]) }), 'image_embeds'],
    ];
    for (const [call, tensor] of cases) {
      const err = await call().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TensorError);
      expect((err as TensorError).code).toBe('TENSOR_MISSING');
      expect((err as TensorError).tensor).toBe(tensor);
      expect((err as Error).message).toContain(`"${tensor}"`);
    }
  });

  it('a model without a text path or retrieval heads says so (typed) instead of failing inside', async () => {
    const backend = await createTfjsBackend('cpu');
    const imageOnly = makeSpec({ textPath: false, retrievalHeads: undefined, languageProjection: undefined });
    const m = Model.fromTensors(backend, imageOnly, initParams(qformerParamSpecs(imageOnly), { seed: 2 }));
    try {
      const text = await m.encodeText(IDS).catch((e: unknown) => e);
      expect(text).toBeInstanceOf(TensorError);
      expect((text as TensorError).code).toBe('TENSOR_UNEXPECTED');
      expect((text as Error).message).toMatch(/"input_ids": this checkpoint has no Q-Former text path/);
      const score = await m.score(IMG, IDS).catch((e: unknown) => e);
      expect(score).toBeInstanceOf(QfError);
      expect((score as QfError).code).toBe('MODEL_NO_RETRIEVAL_HEADS');
    } finally {
      m.dispose();
    }
  });
});
