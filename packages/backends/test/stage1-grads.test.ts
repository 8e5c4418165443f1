import {
  type Backend,
  type ParamStore,
  type QFormerModelSpec,
  type TrainingBackend,
  qformerModelConfigFromJson,
  requireTraining,
} from '@qf/core';
import { type HostTensor, toFloat32 } from '@qf/io';
import {
  type Stage1Batch,
  type Stage1Negatives,
  initStage1Params,
  prepareStage1Inputs,
  stage1Graph,
  stage1Loss,
  stage1ParamSpecs,
} from '@qf/losses';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lengthsMask } from './helpers.js';
import { ALL_SETUPS } from './setups.js';

/**
 * Gradients of the stage-1 loss (ITC + ITM + ITG) from the tfjs backend's `valueAndGrad`, checked
 * against central finite differences of the same loss on a tiny random model.
 *
 * Tolerance. The loss (~5 here) is computed in float32 and the difference quotient
 * `(L(x+h) - L(x-h)) / 2h` is formed on the host in float64. Its error has two parts: rounding,
 * about |L| * 2^-24 * (a few units for the reductions) / 2h ~ 1e-6 / 2e-2 = 5e-5 with h = 1e-2; and
 * truncation, h^2 / 6 * |third derivative|, ~1e-4 for O(1) curvature. `h` scales with the
 * parameter's size, and `temp` (~0.07, far more curved) gets h = 1e-4. Measured: at most 5e-4
 * absolute on O(1) gradients, 3e-3 on d loss / d temp = -46.7 (6e-5 relative). The bound
 * |analytic - numeric| <= 1e-3 + 1e-2 * |numeric| leaves room for platform rounding, while a wrong
 * gradient (a missing term, a wrong sign, a dropped broadcast reduction) is off by O(|gradient|):
 * every sampled entry's gradient is nonzero, and the smallest (~0.01) would need an error above
 * 1e-3 to pass unnoticed.
 */
const H = 1e-2;
const ATOL = 1e-3;
const RTOL = 1e-2;

const TFJS_SETUPS = ALL_SETUPS.filter((s) => s.kind === 'tfjs'); // cpu and wasm

const spec: QFormerModelSpec = {
  qformer: qformerModelConfigFromJson({
    model_type: 'blip_2_qformer',
    hidden_size: 8,
    num_attention_heads: 2,
    num_hidden_layers: 2,
    intermediate_size: 12,
    cross_attention_frequency: 2,
    encoder_hidden_size: 6,
    vocab_size: 20,
    max_position_embeddings: 8,
  }).qformer,
  numQueryTokens: 3,
  textPath: true,
  retrievalHeads: { imageTextHiddenSize: 4 },
};

/** Three pairs, images 0 and 2 sharing an id; padded texts. */
function makeBatch(): Stage1Batch {
  const b = 3;
  const n = 4;
  const t = 5;
  let s = 1;
  const rand = () => {
    s = (s * 16807) % 2147483647;
    return s / 2147483647 - 0.5;
  };
  const ids = [2, 7, 11, 5, 3, 2, 9, 3, 0, 0, 2, 4, 13, 3, 0];
  return {
    imageEmbeds: {
      dtype: 'F32',
      shape: [b, n, 6],
      data: Float32Array.from({ length: b * n * 6 }, () => 2 * rand()),
    },
    inputIds: { dtype: 'I32', shape: [b, t], data: Int32Array.from(ids) },
    attentionMask: lengthsMask([5, 3, 4], t),
    imageId: [10, 11, 10],
  };
}
const NEGATIVES: Stage1Negatives = {
  negImageIdx: Int32Array.of(1, 0, 1),
  negTextIdx: Int32Array.of(1, 2, 1),
};
const TOKENS = { decoderBosId: 19, padTokenId: 0 };

/** Entries to check: parameter name and flat indices. */
const SAMPLE: readonly (readonly [string, readonly number[]])[] = [
  ['query_tokens', [0, 9, 23]],
  ['qformer.encoder.layer.0.crossattention.attention.key.weight', [0, 17, 47]],
  ['qformer.encoder.layer.1.attention.attention.value.weight', [5, 40]],
  ['qformer.encoder.layer.1.output_query.LayerNorm.weight', [3]],
  ['text_projection.weight', [1, 30]],
  ['text_projection.bias', [2]],
  ['vision_projection.weight', [6]],
  ['itm_head.weight', [0, 11]],
  ['temp', [0]],
  ['Qformer.cls.predictions.transform.dense.weight', [4, 60]],
  ['Qformer.cls.predictions.transform.LayerNorm.bias', [5]],
  ['Qformer.cls.predictions.bias', [3, 11]],
  ['embeddings.word_embeddings.weight', [2 * 8 + 1, 11 * 8 + 4, 19 * 8 + 7]],
  ['embeddings.position_embeddings.weight', [0, 3 * 8 + 2]],
  ['qformer.layernorm.bias', [6]],
];

for (const tfjsSetup of TFJS_SETUPS)
  describe(`stage-1 gradients vs finite differences (${tfjsSetup.name})`, () => {
    let backend: Backend<unknown>;
    let training: TrainingBackend<unknown>;
    let host: Map<string, HostTensor<'F32'>>;
    let params: ParamStore<unknown>;
    let inputs: Record<string, HostTensor>;

    beforeAll(async () => {
      backend = await tfjsSetup.create();
      training = requireTraining(backend);
      host = initStage1Params(spec, { seed: 1234, scheme: 'stress' });
      params = backend.createParams(host);
      inputs = prepareStage1Inputs(spec, makeBatch(), TOKENS, NEGATIVES);
    });
    afterAll(async () => {
      if (params) backend.disposeParams(params);
      if (backend) await tfjsSetup.release(backend);
    });

    /** The loss with one entry of one parameter moved by `delta` (float64 on the host). */
    async function lossWith(name: string, index: number, delta: number): Promise<number> {
      const base = host.get(name)!;
      const data = Float32Array.from(base.data);
      data[index] = (data[index] as number) + delta;
      const moved = backend.createParams(new Map([[name, { dtype: 'F32', shape: base.shape, data }]]));
      const overlay: ParamStore<unknown> = {
        get: (n) => (n === name ? moved.get(n) : params.get(n)),
        has: (n) => params.has(n),
        names: () => params.names(),
      };
      try {
        const out = await backend.run('stage1-fd', stage1Graph(spec, overlay, { outputs: [] }), inputs);
        return toFloat32(out.loss)[0] as number;
      } finally {
        backend.disposeParams(moved);
      }
    }

    it('matches central differences for a sample of every kind of parameter', async () => {
      const trainable = stage1ParamSpecs(spec).map((p) => p.name);
      const result = await training.valueAndGrad(stage1Loss(spec), params, trainable, inputs);
      try {
        expect(result.grads.names().sort()).toEqual([...trainable].sort());
        const grads = await training.readParams(result.grads);
        for (const p of stage1ParamSpecs(spec))
          expect(grads.get(p.name)?.shape, p.name).toEqual([...p.shape]);
        let worst = { name: '', excess: Number.NEGATIVE_INFINITY };
        for (const [name, indices] of SAMPLE) {
          const g = toFloat32(grads.get(name)!);
          for (const i of indices) {
            const x = (host.get(name)!.data[i] as number) ?? 0;
            const h = name === 'temp' ? 1e-4 : H * Math.max(1, Math.abs(x));
            const numeric = ((await lossWith(name, i, h)) - (await lossWith(name, i, -h))) / (2 * h);
            const analytic = g[i] as number;
            const excess = Math.abs(analytic - numeric) - (ATOL + RTOL * Math.abs(numeric));
            if (excess > worst.excess)
              worst = { name: `${name}[${i}] analytic ${analytic} numeric ${numeric}`, excess };
            expect(
              Math.abs(analytic - numeric),
              `${name}[${i}]: analytic ${analytic}, numeric ${numeric}`,
            ).toBeLessThanOrEqual(ATOL + RTOL * Math.abs(numeric));
          }
        }
        expect(worst.excess, worst.name).toBeLessThanOrEqual(0);
        // Every sampled parameter really is on the loss path.
        for (const [name] of SAMPLE)
          expect(
            toFloat32(grads.get(name)!).some((v) => v !== 0),
            name,
          ).toBe(true);
      } finally {
        backend.disposeParams(result.grads);
      }
    });

    it('gives zeros for a trainable parameter the loss does not read', async () => {
      const r = await training.valueAndGrad(
        stage1Loss(spec, { parts: ['itc'] }),
        params,
        ['temp', 'Qformer.cls.predictions.bias'],
        inputs,
      );
      const g = await training.readParams(r.grads);
      backend.disposeParams(r.grads);
      expect(toFloat32(g.get('Qformer.cls.predictions.bias')!).every((v) => v === 0)).toBe(true);
      expect(toFloat32(g.get('temp')!)[0]).not.toBe(0);
    });

    it('keeps tf.memory().numTensors flat over repeated valueAndGrad calls and on-device updates', async () => {
      const trainable = stage1ParamSpecs(spec).map((p) => p.name);
      const local = backend.createParams(host);
      const sgd = async () => {
        const r = await training.valueAndGrad(
          stage1Loss(spec, { outputs: ['loss_itc', 'loss_itm', 'loss_lm'] }),
          local,
          trainable,
          inputs,
        );
        await training.assignParams((ops) =>
          trainable.map((name) => ({
            store: local,
            name,
            value: ops.sub(local.get(name), ops.mul(r.grads.get(name), ops.scalar(0.05))),
          })),
        );
        backend.disposeParams(r.grads);
        return r.loss;
      };
      try {
        const first = await sgd();
        const before = tf.memory().numTensors;
        let last = first;
        for (let i = 0; i < 4; i++) last = await sgd();
        expect(tf.memory().numTensors).toBe(before);
        expect(last).toBeLessThan(first); // plain SGD on one batch goes downhill
      } finally {
        backend.disposeParams(local);
      }
    });

    it('assignParams rejects a shape change and a store of another kind, and leaks nothing', async () => {
      const local = backend.createParams(new Map([['temp', host.get('temp')!]]));
      const before = tf.memory().numTensors;
      await expect(
        training.assignParams((ops) => [
          { store: local, name: 'temp', value: ops.constant(Float32Array.of(1, 2), [2]) },
        ]),
      ).rejects.toMatchObject({ code: 'BACKEND_ASSIGN' });
      const foreign: ParamStore<unknown> = {
        get: () => local.get('temp'),
        has: () => true,
        names: () => ['temp'],
      };
      await expect(
        training.assignParams((ops) => [{ store: foreign, name: 'temp', value: ops.scalar(1) }]),
      ).rejects.toMatchObject({ code: 'BACKEND_ASSIGN' });
      expect(tf.memory().numTensors).toBe(before);
      await training.assignParams((ops) => [{ store: local, name: 'temp', value: ops.scalar(0.5) }]);
      expect(toFloat32((await training.readParams(local)).get('temp')!)[0]).toBe(0.5);
      backend.disposeParams(local);
    });

    it('names a missing trainable parameter, rejects a non-scalar loss, survives a throwing loss', async () => {
      await expect(training.valueAndGrad(stage1Loss(spec), params, ['nope'], inputs)).rejects.toMatchObject({
        code: 'TENSOR_MISSING',
      });
      const before = tf.memory().numTensors;
      await expect(
        training.valueAndGrad(
          (ops, p) => ({ loss: ops.mul(p.get('text_projection.bias'), ops.scalar(2)) }),
          params,
          ['text_projection.bias'],
          {},
        ),
      ).rejects.toMatchObject({ code: 'BACKEND_LOSS' });
      expect(tf.memory().numTensors).toBe(before);
      // A loss function that throws half-way (here: an input missing) leaks nothing either.
      const { lm_keep: _, ...partial } = inputs;
      await expect(
        training.valueAndGrad(stage1Loss(spec), params, ['query_tokens'], partial),
      ).rejects.toMatchObject({ code: 'LOSS_INPUT' });
      expect(tf.memory().numTensors).toBe(before);
    });
  });
