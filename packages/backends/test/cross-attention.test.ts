import { join } from 'node:path';
import type { Backend, QFormerModel } from '@qf/core';
import { loadQFormerFromDir } from '@qf/core/node';
import { type HostTensor, toFloat32 } from '@qf/io';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectClose, goldenDir, maxAbsDiff, readAll, requireDir } from './helpers.js';
import { FAMILY_SETUPS } from './setups.js';

/**
 * The opt-in cross-attention output (`run(inputs, { crossAttentions: true })`): no golden file has
 * HF's `cross_attentions`, so the probabilities are checked by what they must be (a softmax over
 * the image tokens, 0 on masked tokens), against a float64 reference computed here from HF's own
 * layer-0 input (`query_only.hidden_states.0`) and the checkpoint's weights, and across backends.
 */
const caseDir = requireDir(join(goldenDir, 'public_small'));
const HEADS = 4; // public_small: hidden 64, 4 heads, 4 layers, cross_attention_frequency 2
const CROSS_LAYERS = [0, 2];

/** x [R, In] times W^T [Out, In] plus b, in float64. */
function linear(x: Float64Array, rows: number, w: HostTensor, b: HostTensor): Float64Array {
  const [out, inn] = w.shape as [number, number];
  const wd = toFloat32(w);
  const bd = toFloat32(b);
  const y = new Float64Array(rows * out);
  for (let r = 0; r < rows; r++)
    for (let o = 0; o < out; o++) {
      let s = bd[o] as number;
      for (let i = 0; i < inn; i++) s += (x[r * inn + i] as number) * (wd[o * inn + i] as number);
      y[r * out + o] = s;
    }
  return y;
}

/** Softmax attention probabilities [heads, Lq, Lk] of one batch row; `keep` masks keys (0 = masked). */
function attentionProbs(q: Float64Array, k: Float64Array, lq: number, lk: number, keep?: number[]) {
  const hidden = q.length / lq;
  const hd = hidden / HEADS;
  const probs = new Float64Array(HEADS * lq * lk);
  for (let h = 0; h < HEADS; h++)
    for (let i = 0; i < lq; i++) {
      const row = new Float64Array(lk);
      for (let j = 0; j < lk; j++) {
        let s = 0;
        for (let d = 0; d < hd; d++)
          s += (q[i * hidden + h * hd + d] as number) * (k[j * hidden + h * hd + d] as number);
        row[j] = keep && keep[j] === 0 ? Number.NEGATIVE_INFINITY : s / Math.sqrt(hd);
      }
      const m = Math.max(...row);
      const e = row.map((v) => Math.exp(v - m));
      const z = e.reduce((a, v) => a + v, 0);
      for (let j = 0; j < lk; j++) probs[(h * lq + i) * lk + j] = (e[j] as number) / z;
    }
  return probs;
}

/** HF layer 0 of the query pass up to its cross-attention probabilities, in float64. */
function referenceLayer0(
  w: Record<string, HostTensor>,
  h0: HostTensor,
  image: HostTensor,
  keep: HostTensor | undefined,
): Float64Array {
  const [b, q, hidden] = h0.shape as [number, number, number];
  const n = image.shape[1] as number;
  const e = image.shape[2] as number;
  const p = (s: string) => w[`qformer.encoder.layer.0.${s}`] as HostTensor;
  const out = new Float64Array(b * HEADS * q * n);
  for (let r = 0; r < b; r++) {
    const x = Float64Array.from(toFloat32(h0).subarray(r * q * hidden, (r + 1) * q * hidden));
    const img = Float64Array.from(toFloat32(image).subarray(r * n * e, (r + 1) * n * e));
    const lin = (v: Float64Array, rows: number, s: string) =>
      linear(v, rows, p(`${s}.weight`), p(`${s}.bias`));
    // self-attention block: attention, dense, residual, LayerNorm (eps 1e-12)
    const sp = attentionProbs(
      lin(x, q, 'attention.attention.query'),
      lin(x, q, 'attention.attention.key'),
      q,
      q,
    );
    const v = lin(x, q, 'attention.attention.value');
    const hd = hidden / HEADS;
    const ctx = new Float64Array(q * hidden);
    for (let h = 0; h < HEADS; h++)
      for (let i = 0; i < q; i++)
        for (let d = 0; d < hd; d++) {
          let s = 0;
          for (let j = 0; j < q; j++)
            s += (sp[(h * q + i) * q + j] as number) * (v[j * hidden + h * hd + d] as number);
          ctx[i * hidden + h * hd + d] = s;
        }
    const y = lin(ctx, q, 'attention.output.dense').map((val, i) => val + (x[i] as number));
    const g = toFloat32(p('attention.output.LayerNorm.weight'));
    const bb = toFloat32(p('attention.output.LayerNorm.bias'));
    for (let i = 0; i < q; i++) {
      const row = y.subarray(i * hidden, (i + 1) * hidden);
      const mean = row.reduce((a, t) => a + t, 0) / hidden;
      const variance = row.reduce((a, t) => a + (t - mean) ** 2, 0) / hidden;
      for (let d = 0; d < hidden; d++)
        row[d] =
          (((row[d] as number) - mean) / Math.sqrt(variance + 1e-12)) * (g[d] as number) + (bb[d] as number);
    }
    const rowKeep = keep ? Array.from(toFloat32(keep).subarray(r * n, (r + 1) * n)) : undefined;
    const probs = attentionProbs(
      lin(y, q, 'crossattention.attention.query'),
      lin(img, n, 'crossattention.attention.key'),
      q,
      n,
      rowKeep,
    );
    out.set(probs, r * HEADS * q * n);
  }
  return out;
}

const byBackend: Record<string, Record<string, HostTensor>> = {};

for (const setup of FAMILY_SETUPS) {
  describe(`cross-attention probabilities on ${setup.name}`, () => {
    let backend: Backend<unknown>;
    let model: QFormerModel<unknown>;
    let inputs: Record<string, HostTensor>;
    let weights: Record<string, HostTensor>;
    let golden: Record<string, HostTensor>;

    beforeAll(async () => {
      backend = await setup.create();
      model = await loadQFormerFromDir(backend, join(caseDir, 'hf'));
      inputs = await readAll(join(caseDir, 'inputs.safetensors'));
      weights = await readAll(join(caseDir, 'hf/model.safetensors'));
      golden = await readAll(join(caseDir, 'outputs.safetensors'));
    });
    afterAll(async () => {
      model?.dispose();
      if (backend) await setup.release(backend);
    });

    it('are off by default and leave every other output unchanged when on', async () => {
      const feed = {
        image_embeds: inputs['image_embeds']!,
        input_ids: inputs['input_ids']!,
        attention_mask: inputs['attention_mask']!,
      };
      const plain = await model.run(feed);
      expect(Object.keys(plain).filter((k) => k.startsWith('cross_attentions'))).toEqual([]);
      const withAttn = await model.run(feed, { crossAttentions: true });
      const names = Object.keys(withAttn).filter((k) => k.startsWith('cross_attentions.'));
      expect(names.sort()).toEqual(CROSS_LAYERS.map((i) => `cross_attentions.${i}`));
      for (const [k, v] of Object.entries(plain)) expectClose(k, withAttn[k], v, 1e-6);
      byBackend[setup.name] = withAttn;
    });

    it('are a softmax over the image tokens that matches a float64 reference of HF layer 0', async () => {
      const out = await model.run({ image_embeds: inputs['image_embeds']! }, { crossAttentions: true });
      const [b, n] = inputs['image_embeds']!.shape as [number, number];
      for (const i of CROSS_LAYERS) {
        const t = out[`cross_attentions.${i}`]!;
        expect([...t.shape]).toEqual([b, HEADS, 8, n]);
        const d = toFloat32(t);
        for (let r = 0; r < d.length / n; r++) {
          const sum = d.subarray(r * n, (r + 1) * n).reduce((a, v) => a + v, 0);
          expect(Math.abs(sum - 1)).toBeLessThan(1e-5);
        }
      }
      const ref = referenceLayer0(
        weights,
        golden['query_only.hidden_states.0']!,
        inputs['image_embeds']!,
        undefined,
      );
      const got = toFloat32(out['cross_attentions.0']!);
      const diff = got.reduce((m, v, i) => Math.max(m, Math.abs(v - (ref[i] as number))), 0);
      // float32 through LayerNorm and two softmaxes vs float64: a few ulps of values <= 1
      expect(diff).toBeLessThan(2e-5);
    });

    it('give masked image tokens exactly 0 and still sum to 1 over the real ones', async () => {
      const keep = inputs['image_attention_mask']!;
      const out = await model.run(
        { image_embeds: inputs['image_embeds']!, image_attention_mask: keep },
        { crossAttentions: true },
      );
      expectClose('query_output', out['query_output'], golden['query_only_masked_image.last_hidden_state']);
      const [b, n] = keep.shape as [number, number];
      const k = toFloat32(keep);
      expect(k.some((v) => v === 0)).toBe(true); // the golden mask pads some image tokens
      for (const i of CROSS_LAYERS) {
        const d = toFloat32(out[`cross_attentions.${i}`]!);
        const rowsPerBatch = HEADS * 8;
        for (let r = 0; r < b * rowsPerBatch; r++) {
          const batch = Math.floor(r / rowsPerBatch);
          let sum = 0;
          for (let j = 0; j < n; j++) {
            const v = d[r * n + j] as number;
            if (k[batch * n + j] === 0) expect(v).toBe(0);
            sum += v;
          }
          expect(Math.abs(sum - 1)).toBeLessThan(1e-5);
        }
      }
      const ref = referenceLayer0(
        weights,
        golden['query_only.hidden_states.0']!,
        inputs['image_embeds']!,
        keep,
      );
      const got = toFloat32(out['cross_attentions.0']!);
      expect(got.reduce((m, v, i) => Math.max(m, Math.abs(v - (ref[i] as number))), 0)).toBeLessThan(2e-5);
    });
  });
}

describe('cross-attention probabilities across backends', () => {
  it('tfjs and ONNX Runtime agree', () => {
    const [a, b] = FAMILY_SETUPS.map((s) => byBackend[s.name]);
    expect(a && b, 'both backend suites ran').toBeTruthy();
    for (const i of CROSS_LAYERS) {
      const name = `cross_attentions.${i}`;
      expect(maxAbsDiff(a![name]!, b![name]!), name).toBeLessThan(1e-5);
    }
  });
});
