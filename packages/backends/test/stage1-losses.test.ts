import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type Backend,
  BackendUnsupportedError,
  type ParamStore,
  type QFormerModelSpec,
  Rng,
  qformerModelConfigFromJson,
  requireTraining,
  stage1Keep,
} from '@qf/core';
import { type Checkpoint, type HostTensor, toFloat32, toInt32 } from '@qf/io';
import { openCheckpointDir, openSafetensors } from '@qf/io/node';
import {
  LossError,
  type Stage1Batch,
  type Stage1Negatives,
  type Stage1OutputName,
  crossEntropy,
  itgLabels,
  loadStage1Tensors,
  prepareStage1Inputs,
  sampleHardNegatives,
  sampleStage1Negatives,
  stage1CheckpointTensors,
  stage1Graph,
  stage1GraphKey,
  stage1Positives,
  stage1ValueAndGrad,
} from '@qf/losses';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectClose, goldenDir, readAll, requireDir } from './helpers.js';
import { FAMILY_SETUPS } from './setups.js';

/**
 * LAVIS `Blip2Qformer.forward` (stage 1: ITC + ITM + ITG) against the golden `stage1_losses` case:
 * every intermediate and loss of the four batches, with the recorded hard negatives fed in.
 */
const caseDir = requireDir(join(goldenDir, 'stage1_losses'));
const BATCHES = ['plain', 'dup_image_id', 'dup_no_image_id', 'aug_image_id'] as const;
const lavis = JSON.parse(readFileSync(join(caseDir, 'lavis_config.json'), 'utf8')) as {
  tokenizer_standin: Record<string, number>;
};
const TOKENS = {
  decoderBosId: lavis.tokenizer_standin['bos_token_id([DEC])'] as number,
  padTokenId: lavis.tokenizer_standin['pad_token_id'] as number,
};
/** Outputs compared with the golden tensors of the same name. */
const COMPARED: readonly Stage1OutputName[] = [
  'query_output',
  'text_output',
  'image_feats',
  'text_feat',
  'sim_i2t',
  'sim_t2i',
  'temperature',
  'weights_i2t',
  'weights_t2i',
  'itm_output',
  'itm_logits',
  'lm_output',
  'lm_logits',
  'loss_itc',
  'loss_itm',
  'loss_lm',
  'loss',
];

let goldenInputs: Record<string, HostTensor>;
let expected: Record<string, HostTensor>;

function batchOf(name: string): Stage1Batch {
  const id = goldenInputs[`${name}.image_id`];
  return {
    imageEmbeds: goldenInputs[`${name}.image_embeds`]!,
    inputIds: goldenInputs[`${name}.input_ids`]!,
    attentionMask: goldenInputs[`${name}.attention_mask`]!,
    ...(id ? { imageId: id } : {}),
  };
}

function recordedNegatives(name: string): Stage1Negatives {
  return {
    negImageIdx: toInt32(expected[`${name}.neg_image_idx`]!, 'neg_image_idx'),
    negTextIdx: toInt32(expected[`${name}.neg_text_idx`]!, 'neg_text_idx'),
  };
}

beforeAll(async () => {
  goldenInputs = await readAll(join(caseDir, 'inputs.safetensors'));
  expected = await readAll(join(caseDir, 'outputs.safetensors'));
});

describe('stage-1 checkpoint loading', () => {
  it('reads temp and the LM head from the HF layout, the tied copies checked, nothing ignored', async () => {
    const { config, checkpoint } = await openCheckpointDir(join(caseDir, 'hf'));
    try {
      const loaded = await loadStage1Tensors(checkpoint, config, { strict: true });
      expect(loaded.ignored).toEqual([]);
      expect(loaded.tensors.get('temp')?.shape).toEqual([]);
      expect(loaded.tensors.has('Qformer.cls.predictions.transform.dense.weight')).toBe(true);
      expect(loaded.tensors.has('Qformer.cls.predictions.decoder.weight')).toBe(false); // tied
      const written = stage1CheckpointTensors(loaded.tensors);
      expect(written.get('Qformer.cls.predictions.decoder.weight')).toBe(
        loaded.tensors.get('embeddings.word_embeddings.weight'),
      );
    } finally {
      await checkpoint.close();
    }
  });

  it('reads the same tensors from the LAVIS state dict', async () => {
    const { config, checkpoint: hf } = await openCheckpointDir(join(caseDir, 'hf'));
    const lavisFile = await openSafetensors(join(caseDir, 'weights_lavis.safetensors'));
    try {
      const a = await loadStage1Tensors(hf, config);
      const b = await loadStage1Tensors(lavisFile, config);
      expect([...b.tensors.keys()].sort()).toEqual([...a.tensors.keys()].sort());
      for (const [name, t] of a.tensors) expect(toFloat32(b.tensors.get(name)!), name).toEqual(toFloat32(t));
      expect(b.ignored).toEqual(['Qformer.bert.embeddings.position_ids']);
    } finally {
      await hf.close();
      await lavisFile.close();
    }
  });

  it('rejects an untied decoder copy with a TensorError naming it', async () => {
    const { config, checkpoint } = await openCheckpointDir(join(caseDir, 'hf'));
    try {
      const tampered: Checkpoint = {
        names: () => checkpoint.names(),
        info: (name) => checkpoint.info(name),
        close: () => checkpoint.close(),
        read: async (name, opts) => {
          const t = await checkpoint.read(name, opts);
          if (name !== 'Qformer.cls.predictions.decoder.weight') return t;
          const data = Float32Array.from(toFloat32(t));
          data[0] = (data[0] as number) + 1;
          return { dtype: 'F32', shape: t.shape, data };
        },
      };
      await expect(loadStage1Tensors(tampered, config)).rejects.toMatchObject({
        code: 'TENSOR_VALUE',
        tensor: 'Qformer.cls.predictions.decoder.weight',
      });
    } finally {
      await checkpoint.close();
    }
  });
});

describe('host-side stage-1 inputs', () => {
  it('builds the ITG decoder ids and labels LAVIS records', () => {
    const config = JSON.parse(readFileSync(join(caseDir, 'hf/config.json'), 'utf8'));
    const spec: QFormerModelSpec = {
      qformer: qformerModelConfigFromJson(config).qformer,
      numQueryTokens: 4,
      textPath: true,
      retrievalHeads: { imageTextHiddenSize: 32 },
    };
    for (const name of BATCHES) {
      const batch = batchOf(name);
      const inputs = prepareStage1Inputs(spec, batch, TOKENS);
      expect(toInt32(inputs.lm_input_ids!, 'x')).toEqual(
        toInt32(expected[`${name}.lm_decoder_input_ids`]!, 'x'),
      );
      expect(toInt32(itgLabels(batch, TOKENS), 'x')).toEqual(toInt32(expected[`${name}.lm_labels`]!, 'x'));
      // The ITG keep mask is the text rows of core's multimodal-causal pattern.
      const full = toFloat32(stage1Keep('multimodal-causal', 4, batch.attentionMask));
      const l = 12;
      const rows = Array.from({ length: 4 }, (_, b) => [...full.subarray((b * l + 4) * l, (b * l + l) * l)]);
      expect([...toFloat32(inputs.lm_keep!)]).toEqual(rows.flat());
      expect(inputs.lm_keep!.shape).toEqual([4, 8, 12]);
    }
  });
});

describe('hard-negative sampler', () => {
  const weightsAndPositives = (name: string) => {
    const batch = batchOf(name);
    return {
      t2i: expected[`${name}.weights_t2i`]!,
      i2t: expected[`${name}.weights_i2t`]!,
      pos: stage1Positives(4, batch.imageId),
    };
  };

  it('gives the same indices for the same seed', () => {
    for (const name of BATCHES) {
      const { t2i, i2t, pos } = weightsAndPositives(name);
      const a = sampleHardNegatives(t2i, i2t, pos, new Rng(7));
      const b = sampleHardNegatives(t2i, i2t, pos, new Rng(7));
      expect(a).toEqual(b);
    }
  });

  it('never draws a positive, even where the positive weight is large', () => {
    const rng = new Rng(11);
    for (const name of BATCHES) {
      const { t2i, i2t, pos } = weightsAndPositives(name);
      const p = toFloat32(pos);
      for (let k = 0; k < 200; k++) {
        const { negImageIdx, negTextIdx } = sampleHardNegatives(t2i, i2t, pos, rng);
        for (let i = 0; i < 4; i++) {
          expect(p[negImageIdx[i]! * 4 + i], `${name} text ${i}`).toBe(0); // image j vs text i
          expect(p[i * 4 + negTextIdx[i]!], `${name} image ${i}`).toBe(0);
        }
      }
    }
    // Uniform weights, positives included: the mask alone must keep them out.
    const uniform: HostTensor = { dtype: 'F32', shape: [3, 3], data: new Float32Array(9).fill(1 / 3) };
    const pos = stage1Positives(3, [5, 5, 6]);
    for (let k = 0; k < 100; k++) {
      const { negImageIdx, negTextIdx } = sampleHardNegatives(uniform, uniform, pos, rng);
      expect([...negImageIdx]).toEqual([2, 2, negImageIdx[2]]);
      expect(negImageIdx[2]).not.toBe(2);
      expect([...negTextIdx]).toEqual([2, 2, negTextIdx[2]]);
    }
  });

  it('draws roughly in proportion to the weights', () => {
    const w: HostTensor = { dtype: 'F32', shape: [2, 2], data: Float32Array.of(0, 1, 1, 0) };
    const t2i: HostTensor = {
      dtype: 'F32',
      shape: [3, 3],
      data: Float32Array.of(0, 0.2, 0.8, 0.5, 0, 0.5, 0.9, 0.1, 0),
    };
    const rng = new Rng(3);
    let twos = 0;
    for (let k = 0; k < 4000; k++)
      if (sampleHardNegatives(t2i, t2i, stage1Positives(3), rng).negImageIdx[0] === 2) twos++;
    expect(twos / 4000).toBeGreaterThan(0.77);
    expect(twos / 4000).toBeLessThan(0.83);
    expect(sampleHardNegatives(w, w, stage1Positives(2), rng)).toEqual({
      negImageIdx: Int32Array.of(1, 0),
      negTextIdx: Int32Array.of(1, 0),
    });
  });

  it('throws LOSS_NO_NEGATIVE when a row has no candidate', () => {
    const one: HostTensor = { dtype: 'F32', shape: [1, 1], data: Float32Array.of(1) };
    expect(() => sampleHardNegatives(one, one, stage1Positives(1), new Rng(1))).toThrow(LossError);
    const two: HostTensor = { dtype: 'F32', shape: [2, 2], data: Float32Array.of(0.5, 0.5, 0.5, 0.5) };
    expect(() => sampleHardNegatives(two, two, stage1Positives(2, [3, 3]), new Rng(1))).toThrow(
      expect.objectContaining({ code: 'LOSS_NO_NEGATIVE' }),
    );
  });
});

for (const setup of FAMILY_SETUPS) {
  describe(`stage-1 losses vs LAVIS golden on ${setup.name}`, () => {
    let backend: Backend<unknown>;
    let params: ParamStore<unknown>;
    let spec: QFormerModelSpec;

    beforeAll(async () => {
      backend = await setup.create();
      const { config, checkpoint } = await openCheckpointDir(join(caseDir, 'hf'));
      try {
        const loaded = await loadStage1Tensors(checkpoint, config);
        spec = loaded.spec;
        params = backend.createParams(loaded.tensors);
      } finally {
        await checkpoint.close();
      }
    });
    afterAll(async () => {
      if (params) backend.disposeParams(params);
      if (backend) await setup.release(backend);
    });

    for (const name of BATCHES) {
      it(`${name}: every intermediate and loss (recorded negatives)`, async () => {
        const inputs = prepareStage1Inputs(spec, batchOf(name), TOKENS, recordedNegatives(name));
        const out = await backend.run(stage1GraphKey(), stage1Graph(spec, params), inputs);
        for (const k of COMPARED) {
          const golden = k === 'temperature' ? 'temp' : k; // the golden name of the temperature
          expectClose(`${name}.${k}`, out[k], expected[`${name}.${golden}`]);
        }
      });
    }

    it('ITC-only graph gives the sampling weights; drawn negatives are never positives', async () => {
      for (const name of BATCHES) {
        const batch = batchOf(name);
        const s = await sampleStage1Negatives(backend, spec, params, batch, new Rng(5), TOKENS);
        expectClose(`${name}.weights_t2i`, s.weightsT2i, expected[`${name}.weights_t2i`]);
        expectClose(`${name}.weights_i2t`, s.weightsI2t, expected[`${name}.weights_i2t`]);
        const p = toFloat32(stage1Positives(4, batch.imageId));
        for (let i = 0; i < 4; i++) {
          expect(p[s.negImageIdx[i]! * 4 + i]).toBe(0);
          expect(p[i * 4 + s.negTextIdx[i]!]).toBe(0);
        }
      }
    });

    it('generic crossEntropy (host targets, ignore_index, smoothing) equals the ITG loss', async () => {
      const name = 'aug_image_id';
      const labels = toInt32(expected[`${name}.lm_labels`]!, 'lm_labels');
      const [b, t] = expected[`${name}.lm_labels`]!.shape as [number, number];
      const shifted = new Int32Array(b * (t - 1));
      for (let i = 0; i < b; i++)
        for (let j = 0; j + 1 < t; j++) shifted[i * (t - 1) + j] = labels[i * t + j + 1]!;
      const out = await backend.run(
        `ce-test-${name}`,
        (ops, x) => ({
          loss: crossEntropy(ops, ops.slice(x['logits']!, 1, 0, t - 1), shifted, {
            numClasses: 100,
            labelSmoothing: 0.1,
          }),
        }),
        { logits: expected[`${name}.lm_logits`]! },
      );
      expectClose('loss_lm via crossEntropy', out.loss, expected[`${name}.loss_lm`]);
    });

    if (setup.kind === 'tfjs') {
      it('valueAndGrad returns the same losses as the forward, and numTensors stays flat', async () => {
        const training = requireTraining(backend);
        const name = 'aug_image_id';
        const step = () =>
          stage1ValueAndGrad(backend, spec, params, batchOf(name), {
            ...TOKENS,
            trainable: ['temp', 'query_tokens', 'Qformer.cls.predictions.bias'],
            negatives: recordedNegatives(name),
          });
        const first = await step();
        backend.disposeParams(first.grads);
        const before = setup.liveResources(backend);
        for (let i = 0; i < 3; i++) {
          const r = await step();
          expectClose('loss', r.outputs.loss, expected[`${name}.loss`]);
          expectClose('loss_itc', r.outputs.loss_itc, expected[`${name}.loss_itc`]);
          expectClose('loss_itm', r.outputs.loss_itm, expected[`${name}.loss_itm`]);
          expectClose('loss_lm', r.outputs.loss_lm, expected[`${name}.loss_lm`]);
          expect(r.loss).toBeCloseTo(toFloat32(expected[`${name}.loss`]!)[0]!, 4);
          const grads = await training.readParams(r.grads);
          expect(grads.get('temp')?.shape).toEqual([]);
          expect(grads.get('query_tokens')?.shape).toEqual([1, 4, 64]);
          backend.disposeParams(r.grads);
        }
        expect(setup.liveResources(backend)).toBe(before);
      });
    } else {
      it('training throws a typed error naming the backend', async () => {
        expect(() => requireTraining(backend)).toThrow(BackendUnsupportedError);
        await expect(
          stage1ValueAndGrad(backend, spec, params, batchOf('plain'), {
            ...TOKENS,
            trainable: ['temp'],
            negatives: recordedNegatives('plain'),
          }),
        ).rejects.toMatchObject({ code: 'BACKEND_UNSUPPORTED', operation: 'valueAndGrad' });
      });
    }
  });
}
