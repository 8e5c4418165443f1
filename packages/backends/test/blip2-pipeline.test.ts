import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Blip2Error, type Blip2Inputs, Blip2Model, TextTokenizer, wordLevelTokenizerFiles } from '@qf/bridge';
import { loadBlip2FromDir } from '@qf/bridge/node';
import type { Backend, RawImage } from '@qf/core';
import {
  type HostTensor,
  SafetensorsFile,
  TensorError,
  isBlip2Config,
  parseModelConfig,
  serializeSafetensors,
  toFloat32,
  toInt32,
} from '@qf/io';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectClose, goldenDir, maxAbsDiff, readAll, requireDir } from './helpers.js';
import { type BackendSetup, FAMILY_SETUPS } from './setups.js';

/**
 * Whole BLIP-2 / InstructBLIP (`Blip2Model`) against HF transformers 4.47 on the golden cases, from
 * `pixel_values` through the vision tower, Q-Former, projector and LM, on every backend family:
 * per-layer states, LM inputs, logits, loss, greedy generation (right/left-padded prompts and no
 * prompt) with per-step scores, `caption` plumbing with a word-level tokenizer, no backend memory
 * growth, and typed errors.
 */
const CASES = ['blip2_opt_tiny', 'blip2_t5_tiny', 'instructblip_tiny'] as const;
type CaseName = (typeof CASES)[number];
const MAX_NEW_TOKENS = 5; // meta.json generation.call

interface Golden {
  readonly dir: string;
  readonly inputs: Record<string, HostTensor>;
  readonly expected: Record<string, HostTensor>;
  readonly layers: { vision: number; qformer: number };
}

const readJson = async (path: string): Promise<unknown> => JSON.parse(await readFile(path, 'utf8'));

const golden = new Map<CaseName, Golden>();
beforeAll(async () => {
  for (const name of CASES) {
    const dir = requireDir(join(goldenDir, name));
    const config = parseModelConfig(await readJson(join(dir, 'hf', 'config.json')));
    if (!isBlip2Config(config)) throw new Error(`${name}: not a whole-model config`);
    golden.set(name, {
      dir,
      inputs: await readAll(join(dir, 'inputs.safetensors')),
      expected: await readAll(join(dir, 'outputs.safetensors')),
      layers: { vision: config.vision.numHiddenLayers, qformer: config.qformer.numHiddenLayers },
    });
  }
});
const g = (name: CaseName): Golden => golden.get(name) as Golden;
const ints = (t: HostTensor | undefined): number[] => Array.from(toInt32(t as HostTensor, 'ids'));

/** The golden inputs a case's model reads (`qformer_*` only for InstructBLIP). */
function modelInputs(name: CaseName, pick: readonly string[]): Blip2Inputs {
  const src = g(name).inputs;
  const names = [
    'pixel_values',
    ...pick,
    ...(name.startsWith('instruct') ? ['qformer_input_ids', 'qformer_attention_mask'] : []),
  ];
  return Object.fromEntries(names.map((n) => [n, src[n]])) as unknown as Blip2Inputs;
}

/** First `rows` of axis 1 of a [B, L, H] tensor. */
function firstRows(t: HostTensor, rows: number): HostTensor {
  const [b, l, h] = t.shape as [number, number, number];
  const src = toFloat32(t);
  const out = new Float32Array(b * rows * h);
  for (let r = 0; r < b; r++) out.set(src.subarray(r * l * h, (r * l + rows) * h), r * rows * h);
  return { dtype: 'F32', shape: [b, rows, h], data: out };
}

/** The golden images (HWC uint8) as RawImages. */
function goldenImages(name: CaseName): RawImage[] {
  const raw = g(name).inputs['image_uint8'] as HostTensor;
  const [b, h, w, c] = raw.shape as [number, number, number, number];
  return Array.from({ length: b }, (_, i) => ({
    data: (raw.data as Uint8Array).subarray(i * h * w * c, (i + 1) * h * w * c),
    width: w,
    height: h,
    channels: c,
  }));
}

/** A synthetic word-level vocabulary of `size` with the case's special ids (HF tokenizer.json files). */
function tokenizerFor(kind: 'opt' | 't5' | 'qformer', size: number): TextTokenizer {
  const vocab = Array.from({ length: size }, (_, i) => `w${i}`);
  const at: Record<string, [number, string][]> = {
    opt: [
      [0, '<unk>'],
      [1, '<pad>'],
      [2, '<s>'],
      [108, '</s>'],
    ],
    t5: [
      [0, '<pad>'],
      [1, '</s>'],
      [2, '<unk>'],
    ],
    qformer: [
      [0, '[PAD]'],
      [1, '[UNK]'],
      [2, '[CLS]'],
      [3, '[SEP]'],
    ],
  };
  for (const [i, t] of at[kind] ?? []) vocab[i] = t;
  const specials =
    kind === 'opt'
      ? { pad: '<pad>', unk: '<unk>', bos: '<s>' }
      : kind === 't5'
        ? { pad: '<pad>', unk: '<unk>', eos: '</s>' }
        : { pad: '[PAD]', unk: '[UNK]', bos: '[CLS]', eos: '[SEP]' };
  const files = wordLevelTokenizerFiles(vocab, specials);
  if (kind === 'opt') {
    // OPT's EOS (108 here) is a special token that the tokenizer does not append to prompts.
    const added = files.tokenizer['added_tokens'] as Record<string, unknown>[];
    added.push({
      id: 108,
      content: '</s>',
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    });
  }
  return TextTokenizer.fromJson(files.tokenizer, files.config);
}

async function rejection(p: Promise<unknown> | (() => unknown)): Promise<unknown> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

function expectTensorError(e: unknown, code: string, tensor: string, text?: RegExp): void {
  expect(e).toBeInstanceOf(TensorError);
  expect((e as TensorError).code).toBe(code);
  expect((e as TensorError).tensor).toBe(tensor);
  if (text) expect((e as Error).message).toMatch(text);
}

function parityCase(setup: BackendSetup, name: CaseName): void {
  describe(`${name} from pixel_values on ${setup.name}`, () => {
    let backend: Backend<unknown>;
    let model: Blip2Model<unknown>;
    const decoderOnly = name === 'blip2_opt_tiny';
    beforeAll(async () => {
      backend = await setup.create();
      ({ model } = await loadBlip2FromDir(backend, join(g(name).dir, 'hf')));
    });
    afterAll(async () => {
      model?.dispose();
      if (backend) await setup.release(backend);
    });

    it('reads every tensor of the checkpoint (tied copies included), nothing left over', () => {
      expect(model.ignored).toEqual([]);
      expect(model.instruct).toBe(name === 'instructblip_tiny');
      expect(model.lm.kind).toBe(decoderOnly ? 'decoder-only' : 'encoder-decoder');
    });

    it('forward: vision and Q-Former states, soft prompt, LM inputs, logits and loss match HF', async () => {
      const { expected, layers } = g(name);
      const out = await model.forward(modelInputs(name, ['input_ids', 'attention_mask', 'labels']), {
        hiddenStates: true,
      });
      for (let i = 0; i <= layers.vision; i++)
        expectClose(
          `vision.hidden_states.${i}`,
          out[`vision_hidden_states.${i}`],
          expected[`vision.hidden_states.${i}`],
        );
      expectClose('vision.last_hidden_state', out.vision_output, expected['vision.last_hidden_state']);
      for (let i = 0; i <= layers.qformer; i++)
        expectClose(
          `qformer.hidden_states.${i}`,
          out[`qformer_hidden_states.${i}`],
          expected[`qformer.hidden_states.${i}`],
        );
      const qLast = expected['qformer.last_hidden_state'] as HostTensor;
      if (model.instruct) {
        expectClose('qformer.last_hidden_state', out['qformer_output'], qLast);
        expectClose('query_output (first Q rows)', out.query_output, firstRows(qLast, model.queryLength));
      } else {
        expect(out['qformer_output']).toBeUndefined();
        expectClose('qformer.last_hidden_state', out.query_output, qLast);
      }
      expectClose(
        'language_projection.output',
        out.language_projection,
        expected['language_projection.output'],
      );
      expectClose('lm.inputs_embeds', out['inputs_embeds'], expected['lm.inputs_embeds']);
      expectClose('lm.attention_mask', out['lm_attention_mask'], expected['lm.attention_mask']);
      expectClose('lm.logits', out['logits'], expected['lm.logits']);
      expectClose('lm.loss', out['loss'], expected['lm.loss']);
      if (!decoderOnly) {
        expectClose(
          'lm.encoder_last_hidden_state',
          out['encoder_last_hidden_state'],
          expected['lm.encoder_last_hidden_state'],
        );
        expect(ints(out['decoder_input_ids'])).toEqual(ints(expected['lm.decoder_input_ids']));
      }
    });

    it('forward without labels has no loss; without input_ids only the image side', async () => {
      const noLabels = await model.forward(modelInputs(name, ['input_ids', 'attention_mask']));
      expect(noLabels['loss']).toBeUndefined();
      if (decoderOnly)
        expectClose('lm.logits (no labels)', noLabels['logits'], g(name).expected['lm.logits']);
      const image = await model.forward(modelInputs(name, []));
      expect(Object.keys(image).sort()).toEqual(
        [
          'language_projection',
          'query_output',
          'vision_output',
          ...(model.instruct ? ['qformer_output'] : []),
        ].sort(),
      );
      if (model.instruct) {
        // No qformer_attention_mask means every instruction token is real (HF: ones_like(qformer_input_ids)).
        const ids = g(name).inputs['qformer_input_ids'] as HostTensor;
        const ones: HostTensor = {
          dtype: 'I64',
          shape: [...ids.shape],
          data: new BigInt64Array(ids.data.length).fill(1n),
        };
        const px = g(name).inputs['pixel_values'] as HostTensor;
        const implicit = await model.forward({ pixel_values: px, qformer_input_ids: ids });
        const explicit = await model.forward({
          pixel_values: px,
          qformer_input_ids: ids,
          qformer_attention_mask: ones,
        });
        expectClose(
          'qformer_output without a mask = with all ones',
          implicit['qformer_output'],
          explicit['qformer_output'],
          0,
        );
        expect(maxAbsDiff(implicit.query_output, image.query_output)).toBeGreaterThan(1e-3); // the golden mask pads
      }
      expectClose(
        'language_projection (image only)',
        image.language_projection,
        g(name).expected['language_projection.output'],
      );
    });

    const runs = decoderOnly
      ? ([
          ['generate', ['input_ids', 'attention_mask']],
          ['generate_left', ['gen_left.input_ids', 'gen_left.attention_mask']],
          ['generate_noprompt', []],
        ] as const)
      : ([
          ['generate', ['input_ids', 'attention_mask']],
          ['generate_noprompt', []],
        ] as const);
    for (const [run, names] of runs) {
      it(`generate: ${run}.sequences and ${run}.scores (greedy, max_new_tokens ${MAX_NEW_TOKENS})`, async () => {
        const inputs = modelInputs(name, []) as unknown as Record<string, HostTensor | undefined>;
        const src = g(name).inputs;
        if (names.length)
          Object.assign(inputs, {
            input_ids: src[names[0] as string],
            attention_mask: src[names[1] as string],
          });
        const res = await model.generate(inputs as unknown as Blip2Inputs, { maxNewTokens: MAX_NEW_TOKENS });
        const want = g(name).expected[`${run}.sequences`];
        expect(res.sequences.shape).toEqual(want?.shape);
        expect(ints(res.sequences)).toEqual(ints(want));
        expectClose(`${run}.scores`, res.scores, g(name).expected[`${run}.scores`]);
        expect(res.generated.shape[1]).toBe((want?.shape[1] as number) - res.promptLength);
      });
    }

    it(`holds no backend resources across repeated generate (${setup.kind === 'tfjs' ? 'tf.memory().numTensors' : 'session count'} flat)`, async () => {
      const inputs = modelInputs(name, ['input_ids', 'attention_mask']);
      const first = await model.generate(inputs, { maxNewTokens: 3, numBeams: 2 });
      await model.generate(inputs, { maxNewTokens: 3 });
      const before = setup.liveResources(backend);
      for (let i = 0; i < 3; i++) {
        const again = await model.generate(inputs, { maxNewTokens: 3, numBeams: 2 });
        expect(ints(again.sequences)).toEqual(ints(first.sequences));
        await model.generate(inputs, { maxNewTokens: 3 });
      }
      expect(setup.liveResources(backend)).toBe(before);
    });

    it('caption: preprocesses, tokenizes and decodes exactly what generate produces', async () => {
      const tokenizer = tokenizerFor(decoderOnly ? 'opt' : 't5', 120);
      const images = goldenImages(name);
      const decode = (row: number[]) => tokenizer.decode(row, { skipSpecialTokens: true }).trim();
      if (!model.instruct) {
        // No prompt: the same run as the golden generate_noprompt (the preprocessing is HF's bit for bit).
        const got = await model.captionDetailed(images, { tokenizer, maxNewTokens: MAX_NEW_TOKENS });
        const want = g(name).expected['generate_noprompt.sequences'] as HostTensor;
        const width = want.shape[1] as number;
        got.forEach((c, r) => {
          expect(c.ids).toEqual(ints(want).slice(r * width, (r + 1) * width));
          expect(c.caption).toBe(decode(c.ids));
        });
      }
      // Prompts of different lengths (left-padded for the decoder-only LM, right for T5).
      const prompts = ['w30 w31 w32', 'w40'];
      const qformerTokenizer = tokenizerFor('qformer', 100);
      const captions = await model.captionDetailed(images, {
        tokenizer,
        qformerTokenizer,
        prompt: prompts,
        maxNewTokens: 4,
      });
      const side = decoderOnly ? 'left' : 'right';
      const batch = tokenizer.encodeBatch(prompts, { paddingSide: side });
      const inputs: Record<string, HostTensor> = {
        pixel_values: g(name).inputs['pixel_values'] as HostTensor,
        ...batch,
      };
      if (model.instruct) {
        const q = qformerTokenizer.encodeBatch(prompts);
        Object.assign(inputs, { qformer_input_ids: q.input_ids, qformer_attention_mask: q.attention_mask });
      }
      const direct = await model.generate(inputs as unknown as Blip2Inputs, { maxNewTokens: 4 });
      const width = direct.sequences.shape[1] as number;
      captions.forEach((c, r) => {
        expect(c.ids).toEqual(ints(direct.sequences).slice(r * width, (r + 1) * width));
        expect(c.caption).toBe(decode(c.generated));
      });
      if (decoderOnly) expect(ints(batch.attention_mask).slice(0, 4)).toEqual([1, 1, 1, 1]);
      if (decoderOnly) expect(ints(batch.attention_mask).slice(4, 6)).toEqual([0, 0]);
      expect(
        await model.caption(images, { tokenizer, qformerTokenizer, prompt: prompts, maxNewTokens: 4 }),
      ).toEqual(captions.map((c) => c.caption));
    });
  });
}

for (const setup of FAMILY_SETUPS) for (const name of CASES) parityCase(setup, name);

describe('BLIP-2 typed errors', () => {
  const setup = FAMILY_SETUPS[0] as BackendSetup;
  let backend: Backend<unknown>;
  const models = new Map<CaseName, Blip2Model<unknown>>();
  beforeAll(async () => {
    backend = await setup.create();
    for (const name of ['blip2_opt_tiny', 'instructblip_tiny'] as const)
      models.set(name, (await loadBlip2FromDir(backend, join(g(name).dir, 'hf'))).model);
  });
  afterAll(async () => {
    for (const m of models.values()) m.dispose();
    if (backend) await setup.release(backend);
  });
  const opt = () => models.get('blip2_opt_tiny') as Blip2Model<unknown>;
  const instruct = () => models.get('instructblip_tiny') as Blip2Model<unknown>;
  const withInput = (name: CaseName, extra: Record<string, HostTensor | undefined>) =>
    ({ ...modelInputs(name, ['input_ids', 'attention_mask']), ...extra }) as unknown as Blip2Inputs;
  const i64 = (shape: number[], fill: number): HostTensor => ({
    dtype: 'I64',
    shape,
    data: new BigInt64Array(shape[0]! * shape[1]!).fill(BigInt(fill)),
  });

  it('names the input with expected vs actual', async () => {
    const px = g('blip2_opt_tiny').inputs['pixel_values'] as HostTensor;
    const bad: [Blip2Inputs, string, string, RegExp][] = [
      [
        withInput('blip2_opt_tiny', { pixel_values: { ...px, shape: [2, 3, 16, 64] } }),
        'TENSOR_SHAPE',
        'pixel_values',
        /expected \[B, 3, 32, 32\], got \[2, 3, 16, 64\]/,
      ],
      [
        withInput('blip2_opt_tiny', { input_ids: i64([3, 6], 5), attention_mask: undefined }),
        'TENSOR_SHAPE',
        'input_ids',
        /batch size differs.*expected \[2, T\], got \[3, 6\]/,
      ],
      [
        withInput('blip2_opt_tiny', { input_ids: i64([2, 6], 120) }),
        'TENSOR_VALUE',
        'input_ids',
        /expected 0\.\.119, got 120/,
      ],
      [
        withInput('blip2_opt_tiny', { attention_mask: i64([2, 5], 1) }),
        'TENSOR_SHAPE',
        'attention_mask',
        /expected \[2, 6\], got \[2, 5\]/,
      ],
      [
        withInput('blip2_opt_tiny', { labels: i64([2, 6], 500) }),
        'TENSOR_VALUE',
        'labels',
        /or -100, got 500/,
      ],
      [
        withInput('blip2_opt_tiny', { qformer_input_ids: i64([2, 3], 1) }),
        'TENSOR_UNEXPECTED',
        'qformer_input_ids',
        /only InstructBLIP/,
      ],
      [
        withInput('blip2_opt_tiny', { decoder_input_ids: i64([2, 3], 1) }),
        'TENSOR_UNEXPECTED',
        'decoder_input_ids',
        /decoder-only/,
      ],
      [
        { ...withInput('blip2_opt_tiny', {}), image_embeds: px } as unknown as Blip2Inputs,
        'TENSOR_UNEXPECTED',
        'image_embeds',
        /unknown input/,
      ],
      [
        withInput('instructblip_tiny', { qformer_input_ids: undefined, qformer_attention_mask: undefined }),
        'TENSOR_MISSING',
        'qformer_input_ids',
        /InstructBLIP needs the instruction ids/,
      ],
      [
        withInput('instructblip_tiny', { qformer_input_ids: i64([1, 5], 2) }),
        'TENSOR_SHAPE',
        'qformer_input_ids',
        /expected \[2, T\], got \[1, 5\]/,
      ],
    ];
    for (const [inputs, code, tensor, text] of bad) {
      const model = 'qformer_attention_mask' in inputs ? instruct() : opt();
      expectTensorError(await rejection(model.forward(inputs)), code, tensor, text);
      if (tensor !== 'labels' && tensor !== 'decoder_input_ids')
        expectTensorError(await rejection(model.generate(inputs, { maxNewTokens: 1 })), code, tensor, text);
    }
  });

  it('rejects bad generation options and captioning without a tokenizer or instruction', async () => {
    const inputs = withInput('blip2_opt_tiny', {});
    for (const o of [{ maxNewTokens: 0 }, { numBeams: 1.5 }, { numBeams: 2, numReturnSequences: 3 }])
      expect(await rejection(opt().generate(inputs, o))).toMatchObject({ code: 'BLIP2_BAD_OPTION' });
    const images = goldenImages('blip2_opt_tiny');
    const missing = await rejection(opt().caption(images, { tokenizer: undefined }));
    expect(missing).toBeInstanceOf(Blip2Error);
    expect(missing).toMatchObject({
      code: 'BLIP2_TOKENIZER_MISSING',
      message: expect.stringMatching(/tokenizer/),
    });
    const tokenizer = tokenizerFor('t5', 120);
    expect(await rejection(instruct().caption(images, { tokenizer }))).toMatchObject({
      code: 'BLIP2_INSTRUCTION_MISSING',
    });
    expect(await rejection(instruct().caption(images, { tokenizer, prompt: 'w5' }))).toMatchObject({
      code: 'BLIP2_QFORMER_TOKENIZER_MISSING',
    });
    expect(
      await rejection(opt().caption(images, { tokenizer: tokenizerFor('opt', 120), prompt: ['w5'] })),
    ).toMatchObject({
      code: 'BLIP2_BAD_OPTION',
    });
  });

  it('loading: a Q-Former-only directory, a missing or mis-shaped tensor, strict, no tokenizer', async () => {
    const qformerOnly = await rejection(loadBlip2FromDir(backend, join(goldenDir, 'public_small', 'hf')));
    expect(qformerOnly).toMatchObject({
      code: 'BLIP2_NOT_A_FULL_MODEL',
      message: expect.stringMatching(/no vision_model\.\*/),
    });
    const dir = join(g('blip2_opt_tiny').dir, 'hf');
    const loaded = await loadBlip2FromDir(backend, dir);
    expect(loaded.tokenizer).toBeUndefined();
    loaded.model.dispose();
    expect(await rejection(loadBlip2FromDir(backend, dir, { requireTokenizer: true }))).toMatchObject({
      code: 'BLIP2_TOKENIZER_MISSING',
    });
    const cfg = await readJson(join(dir, 'config.json'));
    const all = new Map(Object.entries(await readAll(join(dir, 'model.safetensors'))));
    const without = new Map(all);
    without.delete('qformer.encoder.layer.0.crossattention.attention.key.weight');
    expectTensorError(
      await rejection(() => Blip2Model.fromTensors(backend, cfg, without)),
      'TENSOR_MISSING',
      'qformer.encoder.layer.0.crossattention.attention.key.weight',
    );
    // From a checkpoint: each part names its missing tensor; extras are listed, or rejected with strict.
    const checkpointOf = (m: Map<string, HostTensor>) =>
      SafetensorsFile.open(serializeSafetensors(Object.fromEntries(m)));
    for (const name of [
      'vision_model.encoder.layers.1.mlp.fc2.weight',
      'language_model.model.decoder.layers.0.fc1.weight',
      'query_tokens',
    ]) {
      const m = new Map(all);
      m.delete(name);
      expectTensorError(
        await rejection(Blip2Model.load(backend, await checkpointOf(m), cfg)),
        'TENSOR_MISSING',
        name,
        /not found/,
      );
    }
    const extra = new Map(all).set('itm_head.bias', { dtype: 'F32', shape: [2], data: new Float32Array(2) });
    const lenient = await Blip2Model.load(backend, await checkpointOf(extra), cfg);
    expect(lenient.ignored).toEqual(['itm_head.bias']);
    lenient.dispose();
    expectTensorError(
      await rejection(Blip2Model.load(backend, await checkpointOf(extra), cfg, { strict: true })),
      'TENSOR_UNEXPECTED',
      'itm_head.bias',
    );
    const bent = new Map(all).set('language_projection.weight', {
      dtype: 'F32',
      shape: [40, 63],
      data: new Float32Array(40 * 63),
    });
    expectTensorError(
      await rejection(() => Blip2Model.fromTensors(backend, cfg, bent)),
      'TENSOR_SHAPE',
      'language_projection.weight',
      /expected \[40, 64\], got \[40, 63\]/,
    );
    expectTensorError(
      await rejection(() => Blip2Model.fromTensors(backend, cfg, all, { strict: true })),
      'TENSOR_UNEXPECTED',
      'language_model.lm_head.weight',
    );
    const fresh = Blip2Model.fromTensors(backend, cfg, all);
    expect(fresh.ignored).toEqual(['language_model.lm_head.weight']); // the tied head: fromTensors takes canonical parameters only
    const out = await fresh.forward(modelInputs('blip2_opt_tiny', ['input_ids', 'attention_mask']));
    expectClose('lm.logits (fromTensors)', out['logits'], g('blip2_opt_tiny').expected['lm.logits']);
    fresh.dispose();
    expect(await rejection(fresh.forward(modelInputs('blip2_opt_tiny', [])))).toMatchObject({
      code: 'BLIP2_DISPOSED',
    });
    const t5 = (await readJson(join(g('blip2_t5_tiny').dir, 'hf', 'config.json'))) as Record<
      string,
      Record<string, unknown>
    >;
    expect(
      await rejection(() =>
        Blip2Model.fromTensors(
          backend,
          { ...t5, text_config: { ...t5.text_config, model_type: 'llama' } },
          all,
        ),
      ),
    ).toMatchObject({
      code: 'CONFIG_INVALID',
    });
  });
});
