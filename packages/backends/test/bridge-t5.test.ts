import { join } from 'node:path';
import {
  type DecodingSession,
  T5LanguageModel,
  type T5SessionInputs,
  crossEntropyLoss,
  generate,
  parseT5Config,
  relativePositionBucket,
  seq2seqTargets,
  t5PositionBias,
  withPrompt,
} from '@qf/bridge';
import type { Backend, ParamStore } from '@qf/core';
import {
  ConfigError,
  type HostTensor,
  TensorError,
  isBlip2Config,
  parseModelConfig,
  toFloat32,
  toInt32,
} from '@qf/io';
import { openCheckpointDir } from '@qf/io/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectClose, goldenDir, readAll, requireDir } from './helpers.js';
import { FAMILY_SETUPS } from './setups.js';

/**
 * T5 / FlanT5 as BLIP-2's language model (`@qf/bridge` T5LanguageModel) against HF transformers on
 * the golden encoder-decoder cases: encoder output and teacher-forced logits from the golden
 * `lm.inputs_embeds`, the loss, greedy generation with and without a prompt (per-step scores), the
 * KV cache against a full decoder pass, beam-style reordering, tied-embedding handling, and no
 * backend memory growth over repeated decoding. Every check runs on tfjs-cpu and ONNX.
 */

const CASES = ['blip2_t5_tiny', 'instructblip_tiny'] as const;
const MAX_NEW_TOKENS = 5; // meta.json generation.call

type Arr = Float32Array | Int32Array | BigInt64Array;

interface CaseData {
  readonly lm: T5LanguageModel;
  readonly tensors: Map<string, HostTensor>;
  readonly ignored: string[];
  /** Every tensor of `hf/model.safetensors`. */
  readonly all: Map<string, HostTensor>;
  readonly inputs: Record<string, HostTensor>;
  readonly expected: Record<string, HostTensor>;
}

async function loadCase(name: string): Promise<CaseData> {
  const dir = requireDir(join(goldenDir, name));
  const ckpt = await openCheckpointDir(join(dir, 'hf'));
  try {
    const config = parseModelConfig(ckpt.config);
    if (!isBlip2Config(config) || !config.text) throw new Error(`${name}: no text_config`);
    const lm = T5LanguageModel.fromTextConfig(config.text.raw);
    const { tensors, ignored } = await lm.loadTensors(ckpt.checkpoint);
    return {
      lm,
      tensors,
      ignored,
      all: new Map(Object.entries(await readAll(join(dir, 'hf', 'model.safetensors')))),
      inputs: await readAll(join(dir, 'inputs.safetensors')),
      expected: await readAll(join(dir, 'outputs.safetensors')),
    };
  } finally {
    await ckpt.checkpoint.close();
  }
}

const get = (rec: Record<string, HostTensor>, name: string): HostTensor => {
  const t = rec[name];
  if (!t) throw new Error(`golden tensor ${name} missing`);
  return t;
};

/** Rows `index` (dim 0) of a tensor. */
function rows(t: HostTensor, index: readonly number[]): HostTensor {
  const per = t.shape.slice(1).reduce((a, b) => a * b, 1);
  const src = t.data as Arr;
  const out = new (src.constructor as new (n: number) => Arr)(index.length * per);
  index.forEach((r, i) => {
    (out as Float32Array).set((src as Float32Array).subarray(r * per, (r + 1) * per), i * per);
  });
  return { dtype: t.dtype, shape: [index.length, ...t.shape.slice(1)], data: out } as HostTensor;
}

/** `x[:, t]` of a [B, L, ...] tensor as [B, ...]. */
function column(x: HostTensor, t: number): HostTensor {
  const [b, l] = x.shape as [number, number];
  const per = x.shape.slice(2).reduce((a, c) => a * c, 1);
  const src = toFloat32(x);
  const out = new Float32Array(b * per);
  for (let r = 0; r < b; r++) out.set(src.subarray((r * l + t) * per, (r * l + t + 1) * per), r * per);
  return { dtype: 'F32', shape: [b, ...x.shape.slice(2)], data: out };
}

/** Column t of an int [B, L] tensor. */
function idsAt(x: HostTensor, t: number): Int32Array {
  const [b, l] = x.shape as [number, number];
  const v = toInt32(x, 'ids');
  return Int32Array.from({ length: b }, (_, r) => v[r * l + t] as number);
}

const f32 = (shape: number[], data: Float32Array): HostTensor => ({ dtype: 'F32', shape, data });

describe('T5 config and tensors (no backend)', () => {
  it('parses the golden text_config as FlanT5 (gated gelu_new, untied head)', async () => {
    const { lm } = await loadCase('blip2_t5_tiny');
    expect(lm.kind).toBe('encoder-decoder');
    expect(lm.config.denseActFn).toBe('gelu_new');
    expect(lm.config.isGatedAct).toBe(true);
    expect(lm.config.tieWordEmbeddings).toBe(false);
    expect(lm.paramSpecs().some((p) => p.name === 'language_model.lm_head.weight')).toBe(true);
  });

  it('derives the feed-forward type and special tokens with HF T5Config rules', () => {
    const base = parseT5Config({ num_layers: 3 });
    expect([base.denseActFn, base.isGatedAct, base.tieWordEmbeddings]).toEqual(['relu', false, true]);
    expect(base.numDecoderLayers).toBe(3);
    expect(parseT5Config({ num_layers: 3, num_decoder_layers: null }).numDecoderLayers).toBe(3);
    const flan = parseT5Config({ feed_forward_proj: 'gated-gelu' });
    expect([flan.denseActFn, flan.isGatedAct]).toEqual(['gelu_new', true]);
    expect(parseT5Config({ feed_forward_proj: 'gated-silu' }).denseActFn).toBe('silu');
    // decoder_start_token_id, else bos_token_id (HF generation's fallback), else none.
    expect(base.decoderStartTokenId).toBeUndefined();
    expect(parseT5Config({ bos_token_id: 3 }).decoderStartTokenId).toBe(3);
    expect(parseT5Config({ bos_token_id: 3, decoder_start_token_id: 0 }).decoderStartTokenId).toBe(0);
  });

  it('throws ConfigError naming the bad field, with expected vs actual', () => {
    const bad: [Record<string, unknown>, string, string][] = [
      [{ d_model: -4 }, 'text_config.d_model', '-4'],
      [{ feed_forward_proj: 'gated-gelu-x' }, 'text_config.feed_forward_proj', '"gated-gelu-x"'],
      [{ feed_forward_proj: 'gated-tanh' }, 'text_config.feed_forward_proj', '"tanh"'],
      [{ dense_act_fn: 'mish' }, 'text_config.dense_act_fn', '"mish"'],
      [{ model_type: 'opt' }, 'text_config.model_type', '"opt"'],
      [
        { relative_attention_num_buckets: 32, relative_attention_max_distance: 16 },
        'text_config.relative_attention_max_distance',
        '16',
      ],
      [{ tie_word_embeddings: 'no' }, 'text_config.tie_word_embeddings', '"no"'],
      [{ vocab_size: 10, eos_token_id: 10 }, 'text_config.eos_token_id', '10'],
    ];
    for (const [patch, field, actual] of bad) {
      let err: unknown;
      try {
        parseT5Config({ model_type: 't5', ...patch });
      } catch (e) {
        err = e;
      }
      expect(err, field).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).field).toBe(field);
      expect((err as ConfigError).message).toContain(`got ${actual}`);
    }
    expect(() => parseT5Config(null)).toThrow(ConfigError);
  });

  it('buckets relative positions as HF: exact near 0, log-spaced, saturating at max distance', () => {
    for (const bidirectional of [true, false]) {
      const nb = 32;
      const md = 128;
      const half = bidirectional ? nb / 2 : nb;
      const exact = half / 2;
      let prev = -1;
      for (let n = 0; n <= 2 * md; n++) {
        const back = relativePositionBucket(-n, bidirectional, nb, md);
        if (n < exact) expect(back).toBe(n);
        expect(back).toBeGreaterThanOrEqual(prev); // monotone in distance
        expect(back).toBeLessThan(half);
        if (n >= md) expect(back).toBe(half - 1); // saturated
        prev = back;
        const ahead = relativePositionBucket(n, bidirectional, nb, md);
        if (bidirectional) expect(ahead).toBe(n === 0 ? 0 : half + back);
        else expect(ahead).toBe(0); // the decoder maps every future position to bucket 0
      }
    }
  });

  it('resolves tied embeddings and names missing or mis-shaped tensors', async () => {
    const { lm, all } = await loadCase('blip2_t5_tiny');
    const only = new Map(all);
    only.delete('language_model.shared.weight');
    only.delete('language_model.decoder.embed_tokens.weight');
    const resolved = lm.resolveTensors(only);
    expect(resolved.tensors.get('language_model.shared.weight')).toBe(
      all.get('language_model.encoder.embed_tokens.weight'),
    );
    expect(resolved.ignored).toEqual([]);

    const noHead = new Map(all);
    noHead.delete('language_model.lm_head.weight');
    expect(() => lm.resolveTensors(noHead)).toThrow(TensorError);
    try {
      lm.resolveTensors(noHead);
    } catch (e) {
      expect((e as TensorError).tensor).toBe('language_model.lm_head.weight');
      expect((e as TensorError).code).toBe('TENSOR_MISSING');
    }
    const name = 'language_model.decoder.block.1.layer.2.DenseReluDense.wo.weight';
    const bad = new Map(all);
    bad.set(name, f32([80, 40], new Float32Array(80 * 40)));
    try {
      lm.resolveTensors(bad);
      expect.unreachable('mis-shaped tensor accepted');
    } catch (e) {
      expect(e).toBeInstanceOf(TensorError);
      expect((e as TensorError).tensor).toBe(name);
      expect((e as TensorError).expected).toBe('[40, 80]');
      expect((e as TensorError).actual).toBe('[80, 40]');
    }
    const extra = new Map(all);
    extra.set('language_model.encoder.block.9.layer.0.SelfAttention.q.weight', f32([1], new Float32Array(1)));
    expect(lm.resolveTensors(extra).ignored).toEqual([
      'language_model.encoder.block.9.layer.0.SelfAttention.q.weight',
    ]);
    expect(() => lm.resolveTensors(extra, { strict: true })).toThrow(TensorError);
  });
});

for (const setup of FAMILY_SETUPS) {
  for (const caseName of CASES) {
    describe(`T5 LM ${caseName} on ${setup.name}`, () => {
      let backend: Backend<unknown>;
      let data: CaseData;
      let params: ParamStore<unknown>;
      let lm: T5LanguageModel;
      let inputs: Record<string, HostTensor>;
      let expected: Record<string, HostTensor>;

      beforeAll(async () => {
        backend = await setup.create();
        data = await loadCase(caseName);
        ({ lm, inputs, expected } = data);
        params = backend.createParams(data.tensors);
      });
      afterAll(async () => {
        if (params) backend.disposeParams(params);
        if (backend) await setup.release(backend);
      });

      /** The golden encoder input: soft prompt (language_projection.output) + embed(input_ids). */
      const promptInputs = (): T5SessionInputs => ({
        softPrompt: get(expected, 'language_projection.output'),
        inputIds: get(inputs, 'input_ids'),
        attentionMask: get(inputs, 'attention_mask'),
      });
      /** BLIP-2 without a prompt: input_ids = [[bos]] * B. */
      const noPromptInputs = (): T5SessionInputs => {
        const soft = get(expected, 'language_projection.output');
        const b = soft.shape[0] as number;
        const bos = lm.tokens.bos as number;
        return {
          softPrompt: soft,
          inputIds: { dtype: 'I32', shape: [b, 1], data: new Int32Array(b).fill(bos) },
        };
      };
      /**
       * HF greedy `generate` (`max_new_tokens=5`, EOS/pad from the LM config) through the shared
       * host-side search; sequences start with decoder_start as HF's encoder-decoder output does.
       */
      const greedy = async (session: DecodingSession) => {
        const out = await generate(session, {
          maxNewTokens: MAX_NEW_TOKENS,
          eosTokenId: lm.tokens.eos,
          padTokenId: lm.tokens.pad,
        });
        const start = new Int32Array(session.rows).fill(lm.tokens.decoderStart as number);
        const sequences = withPrompt({ dtype: 'I32', shape: [session.rows, 1], data: start }, out.sequences);
        return { sequences: Array.from(sequences.data), scores: out.scores };
      };

      it('loads exactly the LM tensors (tied embedding copies resolved, nothing ignored)', () => {
        expect([...data.tensors.keys()].sort()).toEqual(
          lm
            .paramSpecs()
            .map((p) => p.name)
            .sort(),
        );
        expect(data.ignored).toEqual([]);
      });

      it('embeds the prompt after the soft prompt as HF (lm.inputs_embeds)', async () => {
        const out = await backend.run(
          't5-test:embed',
          (ops, i) => ({
            inputs_embeds: ops.concat([i['soft_prompt'], lm.embed(ops, params, i['lm_input_ids'])], 1),
          }),
          {
            soft_prompt: get(expected, 'language_projection.output'),
            lm_input_ids: get(inputs, 'input_ids'),
          },
        );
        expectClose('lm.inputs_embeds', out['inputs_embeds'], expected['lm.inputs_embeds']);
      });

      it('matches the encoder output and the teacher-forced logits', async () => {
        const out = await lm.run(backend, params, {
          inputs_embeds: get(expected, 'lm.inputs_embeds'),
          attention_mask: get(expected, 'lm.attention_mask'),
          decoder_input_ids: get(expected, 'lm.decoder_input_ids'),
        });
        expectClose(
          'lm.encoder_last_hidden_state',
          out.encoder_last_hidden_state,
          expected['lm.encoder_last_hidden_state'],
        );
        expectClose('lm.logits', out.logits, expected['lm.logits']);
      });

      it('matches lm.loss with labels (forward + seq2seq cross-entropy in one graph)', async () => {
        // HF T5: decoder_input_ids = shift_right(labels), mean CE over labels != -100 (no shift).
        const targets = seq2seqTargets(get(inputs, 'labels'), lm.shape.vocabSize);
        const out = await backend.run(
          't5-test:loss',
          (ops, i) => {
            const { logits } = lm.forward(ops, params, {
              inputsEmbeds: i['inputs_embeds'],
              attentionMask: i['attention_mask'],
              decoderInputIds: i['decoder_input_ids'],
            });
            return { loss: crossEntropyLoss(ops, logits, i['index'], i['weight']) };
          },
          {
            inputs_embeds: get(expected, 'lm.inputs_embeds'),
            attention_mask: get(expected, 'lm.attention_mask'),
            decoder_input_ids: get(expected, 'lm.decoder_input_ids'),
            index: targets.index,
            weight: targets.weight,
          },
        );
        expectClose('lm.loss', out['loss'], expected['lm.loss']);
      });

      it('greedy generation with the prompt matches generate.sequences / generate.scores', async () => {
        // Two ways in: the soft prompt + ids assembled in the encoder graph, and ready inputs_embeds.
        const embeds = get(expected, 'lm.inputs_embeds');
        const mask = get(expected, 'lm.attention_mask');
        for (const [how, start] of [
          ['prompt', promptInputs()],
          ['inputs_embeds', { inputsEmbeds: embeds, attentionMask: mask }],
        ] as const) {
          const session = lm.session(backend, params, start);
          const got = await greedy(session);
          expect(session.encoderLastHiddenState, how).toBeDefined();
          expectClose(
            `${how}: encoder`,
            session.encoderLastHiddenState,
            expected['lm.encoder_last_hidden_state'],
          );
          session.dispose();
          expect(got.sequences, how).toEqual(Array.from(toInt32(get(expected, 'generate.sequences'), 's')));
          expectClose(`${how}: generate.scores`, got.scores, expected['generate.scores']);
        }
      });

      it('greedy generation without a prompt matches generate_noprompt.*', async () => {
        const session = lm.session(backend, params, noPromptInputs());
        const got = await greedy(session);
        session.dispose();
        expect(got.sequences).toEqual(Array.from(toInt32(get(expected, 'generate_noprompt.sequences'), 's')));
        expectClose('generate_noprompt.scores', got.scores, expected['generate_noprompt.scores']);
      });

      it('incremental decoding with the cache equals the full decoder pass', async () => {
        const ids = get(expected, 'lm.decoder_input_ids');
        const length = ids.shape[1] as number;
        const full = await lm.run(backend, params, {
          inputs_embeds: get(expected, 'lm.inputs_embeds'),
          attention_mask: get(expected, 'lm.attention_mask'),
          decoder_input_ids: ids,
        });
        // decoder_input_ids[:, 0] is decoder_start, which prefill feeds itself.
        expect(Array.from(idsAt(ids, 0))).toEqual(Array(ids.shape[0]).fill(lm.tokens.decoderStart));
        const session = lm.session(backend, params, {
          inputsEmbeds: get(expected, 'lm.inputs_embeds'),
          attentionMask: get(expected, 'lm.attention_mask'),
        });
        const rowsN = session.rows;
        let logits = await session.prefill();
        for (let t = 0; t < length; t++) {
          const step = f32([rowsN, lm.shape.vocabSize], logits);
          expectClose(`step ${t} vs full pass`, step, column(full.logits, t), 1e-5);
          expectClose(`step ${t} vs HF lm.logits`, step, column(get(expected, 'lm.logits'), t));
          if (t + 1 < length) logits = await session.step(idsAt(ids, t + 1));
        }
        session.dispose();
        await expect(session.step(idsAt(ids, 1))).rejects.toThrow(/disposed/);
      });

      it('reorder() duplicates and swaps rows as beam search needs', async () => {
        const ids = get(expected, 'lm.decoder_input_ids');
        const embeds = get(expected, 'lm.inputs_embeds');
        const mask = get(expected, 'lm.attention_mask');
        const order = [1, 0, 1];
        const a = lm.session(backend, params, { inputsEmbeds: embeds, attentionMask: mask });
        await a.prefill();
        await a.step(idsAt(ids, 1));
        a.reorder(Int32Array.from(order));
        expect(a.rows).toBe(3);
        const next = Int32Array.of(5, 7, 9);
        const got = await a.step(next);
        a.dispose();

        const b = lm.session(backend, params, {
          inputsEmbeds: rows(embeds, order),
          attentionMask: rows(mask, order),
        });
        await b.prefill();
        await b.step(Int32Array.from(order, (r) => idsAt(ids, 1)[r] as number));
        const want = await b.step(next);
        b.dispose();
        expectClose(
          'reordered step',
          f32([3, lm.shape.vocabSize], got),
          f32([3, lm.shape.vocabSize], want),
          1e-5,
        );
        expect(() => lm.session(backend, params, { inputsEmbeds: embeds }).reorder(Int32Array.of(0))).toThrow(
          /prefill/,
        );
      });

      it('rejects bad tokens and reorder indices with typed errors', async () => {
        const s = lm.session(backend, params, noPromptInputs());
        await s.prefill();
        await expect(s.step(Int32Array.of(1))).rejects.toThrow(TensorError);
        await expect(s.step(Int32Array.of(0, lm.shape.vocabSize))).rejects.toThrow(/out of range/);
        expect(() => s.reorder(Int32Array.of(0, 2))).toThrow(TensorError);
        s.dispose();
        const noStart = new T5LanguageModel({ ...lm.config, decoderStartTokenId: undefined });
        await expect(noStart.session(backend, params, noPromptInputs()).prefill()).rejects.toThrow(
          /decoder_start_token_id/,
        );
        expect(() =>
          lm.session(backend, params, { inputsEmbeds: f32([1, 2, 3], new Float32Array(6)) }),
        ).toThrow(/inputs_embeds/);
      });

      it('the in-graph position bias equals HF buckets past max distance and with a cache offset', async () => {
        // A small bucket range so 20 positions run past max_distance (8) in both directions.
        const cfg = parseT5Config({
          ...lm.config,
          model_type: 't5',
          relative_attention_num_buckets: 8,
          relative_attention_max_distance: 8,
          num_heads: 2,
        });
        const nb = cfg.relativeAttentionNumBuckets;
        const weight = f32(
          [nb, 2],
          Float32Array.from({ length: nb * 2 }, (_, i) => i * 0.25 - 1),
        );
        for (const [bidirectional, lq, lk] of [
          [true, 20, 20],
          [false, 20, 20],
          [false, 1, 20],
          [false, 3, 17],
        ] as const) {
          const out = await backend.run(
            `t5-test:bias:${bidirectional}`,
            (ops, i) => ({
              bias: t5PositionBias(
                ops,
                cfg,
                i['weight'],
                bidirectional,
                ops.range(i['q'], 1),
                ops.range(i['k'], 1),
              ),
            }),
            { weight, q: f32([1, lq], new Float32Array(lq)), k: f32([1, lk], new Float32Array(lk)) },
          );
          const want = new Float32Array(2 * lq * lk);
          for (let h = 0; h < 2; h++)
            for (let i = 0; i < lq; i++)
              for (let j = 0; j < lk; j++) {
                const rel = j - (lk - lq + i);
                const bucket = relativePositionBucket(
                  rel,
                  bidirectional,
                  nb,
                  cfg.relativeAttentionMaxDistance,
                );
                const masked = !bidirectional && rel > 0 ? -3.4028234663852886e38 : 0;
                want[(h * lq + i) * lk + j] = Math.fround(
                  (weight.data as Float32Array)[bucket * 2 + h]! + masked,
                );
              }
          expectClose(`bias ${bidirectional} ${lq}x${lk}`, out['bias'], f32([1, 2, lq, lk], want), 0);
        }
      });

      it('tied word embeddings: shared head with the d_model^-0.5 scale', async () => {
        const tied = new T5LanguageModel({ ...lm.config, tieWordEmbeddings: true });
        expect(tied.paramSpecs().some((p) => p.name.endsWith('lm_head.weight'))).toBe(false);
        const shared = data.tensors.get('language_model.shared.weight') as HostTensor;
        const scale = lm.config.dModel ** -0.5;
        const scaledHead = f32(
          [...shared.shape],
          Float32Array.from(toFloat32(shared), (x) => x * scale),
        );
        const untiedParams = backend.createParams(
          new Map([...data.tensors, ['language_model.lm_head.weight', scaledHead]]),
        );
        const tiedParams = backend.createParams(tied.resolveTensors(data.all).tensors);
        try {
          const feed = {
            inputs_embeds: get(expected, 'lm.inputs_embeds'),
            attention_mask: get(expected, 'lm.attention_mask'),
            decoder_input_ids: get(expected, 'lm.decoder_input_ids'),
          };
          const a = await tied.run(backend, tiedParams, feed);
          const b = await lm.run(backend, untiedParams, feed);
          expectClose('tied logits', a.logits, b.logits, 1e-5);
        } finally {
          backend.disposeParams(untiedParams);
          backend.disposeParams(tiedParams);
        }
      });

      it('backend resources stay flat over repeated decoding', async () => {
        const once = async () => {
          const s = lm.session(backend, params, promptInputs());
          await greedy(s);
          s.dispose();
        };
        await once(); // compiles the graphs (onnx) / creates lazy weight copies (tfjs)
        const before = setup.liveResources(backend);
        for (let i = 0; i < 3; i++) await once();
        expect(setup.liveResources(backend)).toBe(before);
      });

      it.runIf(setup.kind === 'onnx')('compiles one graph per key, not one per cache length', async () => {
        const fresh = await setup.create();
        const p = fresh.createParams(data.tensors);
        try {
          const s = lm.session(fresh, p, promptInputs());
          const out = await greedy(s);
          s.dispose();
          expect(out.scores.shape[1]).toBe(MAX_NEW_TOKENS); // 1 first step + 4 cached steps
          expect(setup.liveResources(fresh)).toBe(3); // encoder, decoder-first, decoder-step
        } finally {
          fresh.disposeParams(p);
          await setup.release(fresh);
        }
      });
    });
  }
}
