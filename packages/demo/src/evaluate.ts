import { type OptLanguageModel, bosPrompt, generate } from '@qf/bridge';
import type { Backend, ParamStore, QFormerModel } from '@qf/core';
import type { HostTensor } from '@qf/io';
import { MAX_WORDS, type SplitTensors, TEXT_LENGTH, TOKENS, gatherRows, lmDecode } from './data.js';
import { type SimMatrix, exactMatch, recallAtK, rerankTopK, tokenAccuracy, transpose } from './metrics.js';
import { featureRows } from './qformer.js';
import type { DemoReporter } from './report.js';

/** Recall at 1 and 5 in both directions. */
export interface RetrievalFigures {
  readonly i2t: { readonly r1: number; readonly r5: number };
  readonly t2i: { readonly r1: number; readonly r5: number };
}

/** The held-out figures of a demo run. */
export interface DemoFigures {
  readonly split: 'test' | 'validation';
  /** Images = captions = candidates per query. */
  readonly candidates: number;
  /** ITC alone (max over queries of the cosine similarity), over all candidates. */
  readonly itc: RetrievalFigures;
  /** After ITM re-ranking of each query's ITC top `k` (score = ITM match logit + ITC). */
  readonly itm: RetrievalFigures & { readonly k: number };
  /** Greedy captions from the soft prompt and `</s>`. */
  readonly caption: { readonly exactMatch: number; readonly tokenAccuracy: number };
}

/** One example's reference and generated caption. */
export interface CaptionSample {
  readonly reference: string;
  readonly generated: string;
}

/** Options of {@link evaluateSplit}. */
export interface EvaluateOptions {
  /** ITM re-ranks this many ITC candidates per query. */
  readonly rerankK: number;
  /** Samples to return. */
  readonly samples: number;
  /**
   * The ITM score added to ITC: `logit` (default; the match logit, as LAVIS's BLIP-2
   * `compute_sim_matrix`) or `log-odds` (match minus no-match logit).
   */
  readonly itmScore?: 'log-odds' | 'logit';
  readonly batch?: number;
}

function rows(n: number, batch: number): number[][] {
  const out: number[][] = [];
  for (let s = 0; s < n; s += batch)
    out.push(Array.from({ length: Math.min(batch, n - s) }, (_, i) => s + i));
  return out;
}

const i32 = (shape: number[], data: Int32Array): HostTensor => ({ dtype: 'I32', shape, data });

/** ITC similarity [images, texts]: max over queries of image_feats . text_feat. */
async function itcMatrix<T>(
  model: QFormerModel<T>,
  split: SplitTensors,
  features: HostTensor<'F32'>,
  batch: number,
): Promise<SimMatrix> {
  const n = split.examples.length;
  const t = TEXT_LENGTH;
  const img: Float32Array[] = [];
  const txt: Float32Array[] = [];
  let q = 0;
  let d = 0;
  for (const r of rows(n, batch)) {
    const f = await model.extractFeatures(featureRows(features, r));
    if (!f.imageFeats) throw new Error('unreachable: the demo Q-Former has retrieval heads');
    [, q, d] = f.imageFeats.shape as [number, number, number];
    img.push(f.imageFeats.data as Float32Array);
    const e = await model.encodeText(
      i32([r.length, t], gatherRows(split.qformerIds, t, r)),
      i32([r.length, t], gatherRows(split.qformerMask, t, r)),
    );
    txt.push(e.textFeat?.data as Float32Array);
  }
  const I = new Float32Array(n * q * d);
  const T = new Float32Array(n * d);
  let o = 0;
  for (const a of img) {
    I.set(a, o);
    o += a.length;
  }
  o = 0;
  for (const a of txt) {
    T.set(a, o);
    o += a.length;
  }
  const data = new Float32Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      let best = -Infinity;
      for (let k = 0; k < q; k++) {
        let s = 0;
        for (let c = 0; c < d; c++) s += (I[(i * q + k) * d + c] as number) * (T[j * d + c] as number);
        if (s > best) best = s;
      }
      data[i * n + j] = best;
    }
  return { rows: n, cols: n, data };
}

/**
 * Retrieval (ITC over all candidates, then ITM re-ranking of the top k, both directions) and greedy
 * captioning on a split whose captions are all distinct, from its frozen image features.
 */
export async function evaluateSplit<T>(
  backend: Backend<T>,
  model: QFormerModel<T>,
  lm: OptLanguageModel,
  lmParams: ParamStore<T>,
  split: SplitTensors,
  features: HostTensor<'F32'>,
  splitName: 'test' | 'validation',
  o: EvaluateOptions,
  reporter: DemoReporter,
): Promise<{ figures: DemoFigures; samples: CaptionSample[] }> {
  const n = split.examples.length;
  const t = TEXT_LENGTH;
  const batch = o.batch ?? 100;
  const phase = reporter.phase(`evaluate (${splitName})`, 2 * n + Math.ceil(n / batch), 'items');
  let done = 0;
  const tick = () => phase.step(++done, Number.NaN);
  const itc = await itcMatrix(model, split, features, batch);
  const ks = [1, 5];
  const [i2t1, i2t5] = recallAtK(itc, ks) as [number, number];
  const itcT = transpose(itc);
  const [t2i1, t2i5] = recallAtK(itcT, ks) as [number, number];
  const ids = (r: readonly number[]) => i32([r.length, t], gatherRows(split.qformerIds, t, r));
  const mask = (r: readonly number[]) => i32([r.length, t], gatherRows(split.qformerMask, t, r));
  const matchLogits = (itm: HostTensor) => {
    const x = itm.data as Float32Array;
    return Float32Array.from({ length: x.length / 2 }, (_, r) =>
      o.itmScore !== 'log-odds' ? (x[2 * r + 1] as number) : (x[2 * r + 1] as number) - (x[2 * r] as number),
    );
  };
  const i2tRe = await rerankTopK(itc, o.rerankK, async (i, texts) => {
    const out = await model.rerank(featureRows(features, [i]), ids(texts), mask(texts));
    tick();
    return matchLogits(out.itm);
  });
  const t2iRe = await rerankTopK(itcT, o.rerankK, async (j, images) => {
    const same = images.map(() => j);
    const out = await model.rerank(featureRows(features, images), ids(same), mask(same));
    tick();
    return matchLogits(out.itm);
  });
  const [ri2t1, ri2t5] = recallAtK(i2tRe, ks) as [number, number];
  const [rt2i1, rt2i5] = recallAtK(t2iRe, ks) as [number, number];

  const generated: string[] = [];
  const hypIds: number[][] = [];
  for (const r of rows(n, batch)) {
    const f = await model.extractFeatures(featureRows(features, r));
    const session = lm.session(backend, lmParams, {
      softPrompt: f.languageProjection,
      inputIds: bosPrompt(r.length, TOKENS.lm.bos),
    });
    try {
      const out = await generate(session, {
        maxNewTokens: MAX_WORDS + 1,
        eosTokenId: TOKENS.lm.eos,
        padTokenId: TOKENS.lm.pad,
        promptLength: 1,
      });
      const [, steps] = out.sequences.shape as [number, number];
      const seq = out.sequences.data as Int32Array;
      r.forEach((_, b) => {
        const row = Array.from(seq.subarray(b * steps, (b + 1) * steps));
        hypIds.push(row);
        generated.push(lmDecode(row));
      });
    } finally {
      session.dispose();
    }
    tick();
  }
  phase.end();
  const references = split.examples.map((e) => e.caption);
  // Reference tokens: the caption words and the final </s> (ids after the BOS).
  const refIds = split.examples.map((_, i) => {
    const row = Array.from(split.lmIds.subarray(i * t + 1, (i + 1) * t));
    const len = (split.lmMask.subarray(i * t, (i + 1) * t).reduce((a, b) => a + b, 0) as number) - 1;
    return row.slice(0, len);
  });
  const figures: DemoFigures = {
    split: splitName,
    candidates: n,
    itc: { i2t: { r1: i2t1, r5: i2t5 }, t2i: { r1: t2i1, r5: t2i5 } },
    itm: { k: o.rerankK, i2t: { r1: ri2t1, r5: ri2t5 }, t2i: { r1: rt2i1, r5: rt2i5 } },
    caption: { exactMatch: exactMatch(generated, references), tokenAccuracy: tokenAccuracy(hypIds, refIds) },
  };
  const samples = references
    .slice(0, o.samples)
    .map((reference, i) => ({ reference, generated: generated[i] as string }));
  return { figures, samples };
}

/** The recipe's targets on the test split (issue 5): ITC i2t R@1 and greedy caption exact match. */
export const DEMO_TARGETS = { itcImageToTextR1: 0.9, captionExactMatch: 0.8 } as const;

/** One target against the figure a run measured. */
export interface TargetCheck {
  readonly target: number;
  readonly value: number;
  readonly met: boolean;
}

/** The run's figures against {@link DEMO_TARGETS}. */
export function checkTargets(f: DemoFigures): Record<keyof typeof DEMO_TARGETS, TargetCheck> {
  const check = (target: number, value: number) => ({ target, value, met: value >= target });
  return {
    itcImageToTextR1: check(DEMO_TARGETS.itcImageToTextR1, f.itc.i2t.r1),
    captionExactMatch: check(DEMO_TARGETS.captionExactMatch, f.caption.exactMatch),
  };
}
