import { join } from 'node:path';
import {
  type GenerateResult,
  type OptConfig,
  OptLanguageModel,
  blip2DecoderOnlyLengths,
  bosPrompt,
  causalLmTargets,
  crossEntropyLoss,
  decoderOnlyInputs,
  generate,
  optParamSpecs,
  optPositionIds,
  parseOptConfig,
  softPromptFromQFormer,
  softPromptMask,
  withPrompt,
} from '@qf/bridge';
import { type Backend, type Ops, type ParamStore, requireTraining } from '@qf/core';
import { type HostTensor, isBlip2Config, parseModelConfig, toFloat32, toInt32 } from '@qf/io';
import { openCheckpointDir } from '@qf/io/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectClose, goldenDir, readAll, requireDir } from './helpers.js';
import { FAMILY_SETUPS } from './setups.js';

/**
 * The built-in OPT of @qf/bridge against HF `Blip2ForConditionalGeneration` (golden
 * `blip2_opt_tiny`, transformers 4.47): LM inputs, logits, loss and greedy generation from the
 * recorded soft prompt (`language_projection.output`), on every backend family.
 */
const caseDir = requireDir(join(goldenDir, 'blip2_opt_tiny'));

const ints = (t: HostTensor | undefined): number[] => Array.from(toInt32(t as HostTensor, 'tensor'));

/** The [B, V] slice at position `pos` of a [B, S, V] tensor. */
function positionRows(t: HostTensor, pos: number): Float32Array {
  const [b, s, v] = t.shape as [number, number, number];
  const d = toFloat32(t);
  const out = new Float32Array(b * v);
  for (let r = 0; r < b; r++) out.set(d.subarray((r * s + pos) * v, (r * s + pos + 1) * v), r * v);
  return out;
}

function maxAbs(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

for (const setup of FAMILY_SETUPS) {
  describe(`bridge OPT vs HF Blip2ForConditionalGeneration (golden blip2_opt_tiny) on ${setup.name}`, () => {
    let backend: Backend<unknown>;
    let lm: OptLanguageModel;
    let params: ParamStore<unknown>;
    let inputs: Record<string, HostTensor>;
    let expected: Record<string, HostTensor>;
    let queryLength: number;
    let ignored: string[];
    let tiedFrom: string | undefined;
    let lmTensors: Map<string, HostTensor>;
    const projector = new Map<string, HostTensor>();

    beforeAll(async () => {
      backend = await setup.create();
      const { config, checkpoint } = await openCheckpointDir(join(caseDir, 'hf'));
      try {
        const parsed = parseModelConfig(config);
        if (!isBlip2Config(parsed) || !parsed.text)
          throw new Error('expected a blip-2 config with text_config');
        queryLength = parsed.numQueryTokens;
        lm = OptLanguageModel.fromTextConfig(parsed.text.raw);
        const loaded = await lm.loadTensors(checkpoint);
        ignored = loaded.ignored;
        tiedFrom = loaded.tiedFrom;
        lmTensors = loaded.tensors;
        params = backend.createParams(loaded.tensors);
        for (const n of ['language_projection.weight', 'language_projection.bias'])
          projector.set(n, await checkpoint.read(n, { float32: true }));
      } finally {
        await checkpoint.close();
      }
      inputs = await readAll(join(caseDir, 'inputs.safetensors'));
      expected = await readAll(join(caseDir, 'outputs.safetensors'));
    });
    afterAll(async () => {
      if (params) backend.disposeParams(params);
      if (backend) await setup.release(backend);
    });

    const softPrompt = () => expected['language_projection.output'] as HostTensor;
    const eos = () => [lm.tokens.eos as number];

    it('reads the text_config and the tied LM tensors', () => {
      expect(lm.shape).toEqual({ vocabSize: 120, hiddenSize: 40, numLayers: 2, numHeads: 4, headDim: 10 });
      expect(lm.tokens).toEqual({ bos: 2, eos: 108, pad: 1, decoderStart: undefined });
      expect(tiedFrom).toBe('embed_tokens');
      expect(ignored).toEqual(['language_model.lm_head.weight']);
      expect(lm.paramSpecs().map((p) => p.name)).not.toContain('language_model.lm_head.weight');
    });

    it('matches lm.inputs_embeds, lm.attention_mask and lm.logits (forward without labels)', async () => {
      const fullMask = softPromptMask(queryLength, inputs['attention_mask'] as HostTensor);
      const out = await backend.run(
        'test:opt-forward',
        (ops, x) => {
          const lmIn = decoderOnlyInputs(
            ops,
            lm,
            params,
            x['soft_prompt'],
            x['lm_input_ids'],
            x['lm_text_mask'],
          );
          const { logits } = lm.forward(ops, params, {
            inputsEmbeds: lmIn.inputsEmbeds,
            attentionMask: lmIn.attentionMask,
            positionIds: x['position_ids'],
          });
          return { inputs_embeds: lmIn.inputsEmbeds, attention_mask: lmIn.attentionMask, logits };
        },
        {
          soft_prompt: softPrompt(),
          lm_input_ids: inputs['input_ids'] as HostTensor,
          lm_text_mask: inputs['attention_mask'] as HostTensor,
          position_ids: optPositionIds(fullMask, 'forward'),
        },
      );
      expectClose('lm.inputs_embeds', out['inputs_embeds'], expected['lm.inputs_embeds']);
      expectClose('lm.attention_mask', out['attention_mask'], expected['lm.attention_mask']);
      expect(ints(out['attention_mask'])).toEqual(ints(fullMask));
      expectClose('lm.logits', out['logits'], expected['lm.logits']);
    });

    it('matches lm.loss (labels aligned with the text positions, shifted)', async () => {
      const ids = inputs['input_ids'] as HostTensor;
      const fullMask = softPromptMask(queryLength, inputs['attention_mask'] as HostTensor);
      const length = fullMask.shape[1] as number;
      const targets = causalLmTargets(inputs['labels'] as HostTensor, length, lm.shape.vocabSize);
      const labelLength = inputs['labels']?.shape[1] as number;
      // HF shifts: the first label of each row is never predicted.
      expect(targets.count).toBe(
        ints(inputs['labels']).filter((y, i) => y !== -100 && i % labelLength !== 0).length,
      );
      const out = await backend.run(
        'test:opt-loss',
        (ops, x) => {
          const lmIn = decoderOnlyInputs(
            ops,
            lm,
            params,
            x['soft_prompt'],
            x['lm_input_ids'],
            x['lm_text_mask'],
          );
          const { logits } = lm.forward(ops, params, {
            inputsEmbeds: lmIn.inputsEmbeds,
            attentionMask: lmIn.attentionMask,
            positionIds: x['position_ids'],
          });
          return { loss: crossEntropyLoss(ops, logits, x['target_index'], x['target_weight']) };
        },
        {
          soft_prompt: softPrompt(),
          lm_input_ids: ids,
          lm_text_mask: inputs['attention_mask'] as HostTensor,
          position_ids: optPositionIds(fullMask, 'forward'),
          target_index: targets.index,
          target_weight: targets.weight,
        },
      );
      expectClose('lm.loss', out['loss'], expected['lm.loss']);
    });

    const cases = [
      { name: 'generate', ids: 'input_ids', mask: 'attention_mask' },
      { name: 'generate_left', ids: 'gen_left.input_ids', mask: 'gen_left.attention_mask' },
      { name: 'generate_noprompt', ids: undefined, mask: undefined },
    ] as const;
    for (const c of cases) {
      it(`matches ${c.name}.sequences and ${c.name}.scores (greedy, max_new_tokens 5)`, async () => {
        const ids = c.ids ? (inputs[c.ids] as HostTensor) : bosPrompt(2, lm.tokens.bos as number);
        const mask = c.mask ? (inputs[c.mask] as HostTensor) : undefined;
        const lengths = blip2DecoderOnlyLengths({
          queryLength,
          promptLength: ids.shape[1] as number,
          maxNewTokens: 5,
        });
        expect(lengths.minLength).toBe(0); // meta.json generation.notes: no EOS suppression
        const session = lm.session(backend, params, {
          softPrompt: softPrompt(),
          inputIds: ids,
          attentionMask: mask,
        });
        let res: GenerateResult;
        try {
          res = await generate(session, { ...lengths, eosTokenId: eos(), padTokenId: lm.tokens.pad });
        } finally {
          session.dispose();
        }
        const sequences = withPrompt(ids, res.sequences);
        expect(sequences.shape).toEqual(expected[`${c.name}.sequences`]?.shape);
        expect(ints(sequences)).toEqual(ints(expected[`${c.name}.sequences`]));
        expectClose(`${c.name}.scores`, res.scores, expected[`${c.name}.scores`]);
      });
    }

    it('decodes incrementally with the KV cache exactly as a full forward (left and right padding)', async () => {
      for (const [idsName, maskName] of [
        ['gen_left.input_ids', 'gen_left.attention_mask'],
        ['input_ids', 'attention_mask'],
      ] as const) {
        const ids = inputs[idsName] as HostTensor;
        const textMask = inputs[maskName] as HostTensor;
        const [b, t] = ids.shape as [number, number];
        const steps = [Int32Array.of(5, 17), Int32Array.of(108, 3), Int32Array.of(44, 44)];
        const session = lm.session(backend, params, {
          softPrompt: softPrompt(),
          inputIds: ids,
          attentionMask: textMask,
        });
        const incremental = [await session.prefill()];
        for (const tok of steps) incremental.push(await session.step(tok));
        const cachedMask = session.attentionMask();
        session.dispose();

        // The same tokens in one pass: prompt ids then the stepped tokens, mask ones for them.
        const n = steps.length;
        const allIds = new Int32Array(b * (t + n));
        const allMask = new Int32Array(b * (t + n));
        const pid = toInt32(ids, 'ids');
        const pm = toInt32(textMask, 'mask');
        for (let r = 0; r < b; r++) {
          allIds.set(pid.subarray(r * t, (r + 1) * t), r * (t + n));
          allMask.set(pm.subarray(r * t, (r + 1) * t), r * (t + n));
          steps.forEach((tok, k) => {
            allIds[r * (t + n) + t + k] = tok[r] as number;
            allMask[r * (t + n) + t + k] = 1;
          });
        }
        const fullMask = softPromptMask(queryLength, { dtype: 'I32', shape: [b, t + n], data: allMask });
        expect(ints(cachedMask)).toEqual(ints(fullMask));
        const out = await backend.run(
          'test:opt-full',
          (ops, x) => {
            const lmIn = decoderOnlyInputs(
              ops,
              lm,
              params,
              x['soft_prompt'],
              x['lm_input_ids'],
              x['lm_text_mask'],
            );
            return {
              logits: lm.forward(ops, params, {
                inputsEmbeds: lmIn.inputsEmbeds,
                attentionMask: lmIn.attentionMask,
                positionIds: x['position_ids'],
              }).logits,
            };
          },
          {
            soft_prompt: softPrompt(),
            lm_input_ids: { dtype: 'I32', shape: [b, t + n], data: allIds },
            lm_text_mask: { dtype: 'I32', shape: [b, t + n], data: allMask },
            position_ids: optPositionIds(fullMask, 'generate'),
          },
        );
        const logits = out['logits'] as HostTensor;
        incremental.forEach((step, k) => {
          const d = maxAbs(step, positionRows(logits, queryLength + t - 1 + k));
          expect(d, `${idsName} step ${k}: max abs diff ${d}`).toBeLessThanOrEqual(1e-4);
        });
      }
    });

    it.runIf(setup.kind === 'tfjs')(
      'trains through the LM loss: valueAndGrad of the projector matches central differences',
      async () => {
        const training = requireTraining(backend);
        const fullMask = softPromptMask(queryLength, inputs['attention_mask'] as HostTensor);
        const targets = causalLmTargets(
          inputs['labels'] as HostTensor,
          fullMask.shape[1] as number,
          lm.shape.vocabSize,
        );
        // Stage 2: Q-Former output -> language_projection -> frozen OPT -> loss.
        const lossFn = <T>(ops: Ops<T>, p: ParamStore<T>, x: Record<string, T>) => {
          const soft = softPromptFromQFormer(ops, p, x['qformer_output'] as T);
          const lmIn = decoderOnlyInputs(ops, lm, p, soft, x['lm_input_ids'] as T, x['lm_text_mask'] as T);
          const { logits } = lm.forward(ops, p, {
            inputsEmbeds: lmIn.inputsEmbeds,
            attentionMask: lmIn.attentionMask,
            positionIds: x['position_ids'] as T,
          });
          return { loss: crossEntropyLoss(ops, logits, x['target_index'] as T, x['target_weight'] as T) };
        };
        const feeds: Record<string, HostTensor> = {
          qformer_output: expected['qformer.last_hidden_state'] as HostTensor,
          lm_input_ids: inputs['input_ids'] as HostTensor,
          lm_text_mask: inputs['attention_mask'] as HostTensor,
          position_ids: optPositionIds(fullMask, 'forward'),
          target_index: targets.index,
          target_weight: targets.weight,
        };
        const weightName = 'language_projection.weight';
        const storeWith = (weight: Float32Array) => {
          const m = new Map(lmTensors);
          for (const [n, t] of projector) m.set(n, n === weightName ? { ...t, data: weight } : t);
          return backend.createParams(m);
        };
        const lossAt = async (weight: Float32Array) => {
          const store = storeWith(weight);
          try {
            const out = await backend.run('test:opt-stage2', (ops, x) => lossFn(ops, store, x), feeds);
            return toFloat32(out['loss'] as HostTensor)[0] as number;
          } finally {
            backend.disposeParams(store);
          }
        };
        const w0 = toFloat32(projector.get(weightName) as HostTensor);
        const store = storeWith(w0);
        await training.valueAndGrad(lossFn, store, [weightName], feeds); // warm-up (weight caches)
        const before = setup.liveResources(backend);
        const result = await training.valueAndGrad(
          lossFn,
          store,
          [weightName, 'language_projection.bias'],
          feeds,
        );
        expectClose('lm.loss (valueAndGrad)', result.outputs.loss, expected['lm.loss']);
        const grads = await training.readParams(result.grads);
        backend.disposeParams(result.grads);
        expect(setup.liveResources(backend)).toBe(before);
        backend.disposeParams(store);
        const g = toFloat32(grads.get(weightName) as HostTensor);
        expect(grads.get('language_projection.bias')?.shape).toEqual([lm.shape.hiddenSize]);
        const eps = 1e-2;
        let nonZero = 0;
        for (const i of [0, 13, 200, 777, 1500, 2559]) {
          const plus = w0.slice();
          const minus = w0.slice();
          plus[i] = (plus[i] as number) + eps;
          minus[i] = (minus[i] as number) - eps;
          const fd = ((await lossAt(plus)) - (await lossAt(minus))) / (2 * eps);
          const gi = g[i] as number;
          expect(
            Math.abs(fd - gi),
            `d loss / d ${weightName}[${i}]: autodiff ${gi}, central difference ${fd}`,
          ).toBeLessThanOrEqual(3e-4 + 5e-3 * Math.abs(gi));
          if (gi !== 0) nonZero++;
        }
        expect(nonZero).toBeGreaterThan(3);
      },
    );

    it('holds no backend resources across repeated generation (tensors / sessions stay flat)', async () => {
      const run = async () => {
        const session = lm.session(backend, params, {
          softPrompt: softPrompt(),
          inputIds: inputs['gen_left.input_ids'],
          attentionMask: inputs['gen_left.attention_mask'],
        });
        try {
          return await generate(session, { maxNewTokens: 4, eosTokenId: eos(), padTokenId: 1, numBeams: 3 });
        } finally {
          session.dispose();
        }
      };
      const first = await run();
      const before = setup.liveResources(backend);
      for (let i = 0; i < 3; i++) {
        const again = await run();
        expect(ints(again.sequences)).toEqual(ints(first.sequences));
      }
      expect(setup.liveResources(backend)).toBe(before);
    });
  });
}

/**
 * Config variants the golden case does not cover (post-LayerNorm blocks, project_in/out, untied head,
 * no biases, tanh GELU, non-affine LayerNorm, no final LayerNorm), against a plain float64 reference
 * of HF `OPTForCausalLM.forward` written from the transformers code, with seeded random weights.
 */
type Vec = number[];

function seeded(seed: number): () => number {
  let h = seed >>> 0;
  return () => {
    h = (Math.imul(h ^ (h >>> 15), 2246822519) + 3266489917) >>> 0;
    h ^= h >>> 13;
    return (h >>> 0) / 2 ** 32 - 0.5;
  };
}

function randomOptTensors(c: OptConfig, seed: number): Map<string, HostTensor> {
  const rand = seeded(seed);
  const out = new Map<string, HostTensor>();
  for (const p of optParamSpecs(c)) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    const norm = /layer_norm\.weight$/.test(p.name);
    const scale = p.name.endsWith('.bias')
      ? 0.2
      : p.shape.length === 2 && !p.name.includes('embed')
        ? 6 / Math.sqrt(p.shape[1] as number)
        : 1;
    out.set(p.name, {
      dtype: 'F32',
      shape: [...p.shape],
      data: Float32Array.from({ length: n }, () => (norm ? 1 : 0) + scale * rand()),
    });
  }
  return out;
}

function referenceOpt(
  c: OptConfig,
  w: Map<string, HostTensor>,
  embeds: Vec[][],
  mask: number[][],
  pos: number[][],
): Vec[][] {
  const get = (n: string) => toFloat32(w.get(`language_model.${n}`) as HostTensor);
  const has = (n: string) => w.has(`language_model.${n}`);
  const lin = (x: Vec, name: string): Vec => {
    const W = get(`${name}.weight`);
    const b = has(`${name}.bias`) ? get(`${name}.bias`) : undefined;
    const out = W.length / x.length;
    return Array.from({ length: out }, (_, o) =>
      x.reduce((s, xi, i) => s + xi * (W[o * x.length + i] as number), b ? (b[o] as number) : 0),
    );
  };
  const ln = (x: Vec, prefix: string): Vec => {
    const m = x.reduce((a, b) => a + b, 0) / x.length;
    const v = x.reduce((a, b) => a + (b - m) ** 2, 0) / x.length;
    const g = has(`${prefix}weight`) ? get(`${prefix}weight`) : undefined;
    const bb = has(`${prefix}bias`) ? get(`${prefix}bias`) : undefined;
    return x.map(
      (xi, i) => ((xi - m) / Math.sqrt(v + 1e-5)) * (g ? (g[i] as number) : 1) + (bb ? (bb[i] as number) : 0),
    );
  };
  const act = (x: number) =>
    c.activationFunction === 'relu'
      ? Math.max(x, 0)
      : 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
  const H = c.hiddenSize;
  const heads = c.numAttentionHeads;
  const hd = H / heads;
  const posTable = get('model.decoder.embed_positions.weight');
  return embeds.map((rowEmb, b) => {
    const T = rowEmb.length;
    let h = rowEmb.map((e, t) => {
      const x = c.wordEmbedProjDim !== H ? lin(e, 'model.decoder.project_in') : e;
      const p = ((pos[b] as number[])[t] as number) + 2;
      return x.map((xi, i) => xi + (posTable[p * H + i] as number));
    });
    for (let l = 0; l < c.numHiddenLayers; l++) {
      const L = `model.decoder.layers.${l}.`;
      const pre = c.doLayerNormBefore;
      const a = h.map((x) => (pre ? ln(x, `${L}self_attn_layer_norm.`) : x));
      const q = a.map((x) => lin(x, `${L}self_attn.q_proj`).map((v) => v * hd ** -0.5));
      const k = a.map((x) => lin(x, `${L}self_attn.k_proj`));
      const v = a.map((x) => lin(x, `${L}self_attn.v_proj`));
      const ctx = q.map((qt, t) => {
        const out: Vec = new Array(H).fill(0);
        for (let hh = 0; hh < heads; hh++) {
          const s = k.map((kj, j) => {
            let dot = 0;
            for (let d = 0; d < hd; d++) dot += (qt[hh * hd + d] as number) * (kj[hh * hd + d] as number);
            return j <= t && (mask[b] as number[])[j] ? dot : dot + -3.4028234663852886e38;
          });
          const m = Math.max(...s);
          const e = s.map((x) => Math.exp(x - m));
          const z = e.reduce((x, y) => x + y, 0);
          for (let j = 0; j < T; j++)
            for (let d = 0; d < hd; d++)
              out[hh * hd + d] =
                (out[hh * hd + d] as number) +
                ((e[j] as number) / z) * ((v[j] as Vec)[hh * hd + d] as number);
        }
        return out;
      });
      h = h.map((x, t) => {
        let y = lin(ctx[t] as Vec, `${L}self_attn.out_proj`).map((o, i) => o + (x[i] as number));
        if (!pre) y = ln(y, `${L}self_attn_layer_norm.`);
        const f = pre ? ln(y, `${L}final_layer_norm.`) : y;
        let z = lin(lin(f, `${L}fc1`).map(act), `${L}fc2`).map((o, i) => o + (y[i] as number));
        if (!pre) z = ln(z, `${L}final_layer_norm.`);
        return z;
      });
    }
    return h.map((x) => {
      let y = c.doLayerNormBefore && !c.removeFinalLayerNorm ? ln(x, 'model.decoder.final_layer_norm.') : x;
      if (c.wordEmbedProjDim !== H) y = lin(y, 'model.decoder.project_out');
      return lin(y, c.tieWordEmbeddings ? 'model.decoder.embed_tokens' : 'lm_head');
    });
  });
}

const VARIANTS: Record<string, Record<string, unknown>> = {
  'post-LN, project_in/out, untied head, no bias, gelu_new': {
    do_layer_norm_before: false,
    word_embed_proj_dim: 6,
    tie_word_embeddings: false,
    enable_bias: false,
    activation_function: 'gelu_new',
  },
  'pre-LN without affine LayerNorms or final LayerNorm, relu': {
    layer_norm_elementwise_affine: false,
    _remove_final_layer_norm: true,
  },
};

for (const setup of FAMILY_SETUPS) {
  describe(`bridge OPT config variants vs a float64 reference on ${setup.name}`, () => {
    let backend: Backend<unknown>;
    beforeAll(async () => {
      backend = await setup.create();
    });
    afterAll(async () => {
      if (backend) await setup.release(backend);
    });

    for (const [name, extra] of Object.entries(VARIANTS)) {
      it(name, async () => {
        const config = parseOptConfig({
          vocab_size: 11,
          hidden_size: 8,
          num_attention_heads: 2,
          num_hidden_layers: 2,
          ffn_dim: 12,
          max_position_embeddings: 16,
          ...extra,
        });
        const lm = new OptLanguageModel(config);
        const weights = randomOptTensors(config, 7);
        const params = backend.createParams(weights);
        try {
          const rand = seeded(3);
          const dw = config.wordEmbedProjDim;
          const embeds = [0, 1].map(() =>
            Array.from({ length: 5 }, () => Array.from({ length: dw }, () => 2 * rand())),
          );
          const mask = [
            [1, 1, 1, 1, 0],
            [0, 1, 1, 1, 1],
          ];
          const maskT: HostTensor = { dtype: 'I32', shape: [2, 5], data: Int32Array.from(mask.flat()) };
          const positions = optPositionIds(maskT, 'generate');
          const pos = [0, 1].map((r) => Array.from(positions.data.slice(r * 5, r * 5 + 5)));
          const out = await backend.run(
            'test:opt-variant',
            (ops, x) => ({
              logits: lm.forward(ops, params, {
                inputsEmbeds: x['inputs_embeds'],
                attentionMask: x['lm_attention_mask'],
                positionIds: x['position_ids'],
              }).logits,
            }),
            {
              inputs_embeds: { dtype: 'F32', shape: [2, 5, dw], data: Float32Array.from(embeds.flat(2)) },
              lm_attention_mask: maskT,
              position_ids: positions,
            },
          );
          const ref = referenceOpt(config, weights, embeds, mask, pos);
          expectClose(`${name} logits`, out['logits'], {
            dtype: 'F32',
            shape: [2, 5, 11],
            data: Float32Array.from(ref.flat(2)),
          });
        } finally {
          backend.disposeParams(params);
        }
      });
    }
  });
}
