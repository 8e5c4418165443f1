// What the app computes, with the public package APIs only: the vision tower turns images into
// image embeddings, the Q-Former gives ITC features (and its cross-attention maps), ITM re-ranks
// the best ITC candidates, and the whole BLIP-2 (vision, Q-Former, projector, OPT/T5) captions.
import { Blip2Model, type TextTokenizer } from '@qf/bridge';
import { type QFormerModel, type RawImage, VisionModel, loadQFormer, preprocessImages } from '@qf/core';
import {
  type HostTensor,
  detectCheckpointLayout,
  isBlip2Config,
  parseModelConfig,
  toCanonicalName,
  toFloat32,
} from '@qf/io';
import type { OpenedBackend } from './backends.js';
import type { CheckpointBundle } from './checkpoint.js';

/** The models of one checkpoint on one backend. */
export interface Models {
  readonly opened: OpenedBackend;
  readonly vision: VisionModel<unknown>;
  readonly qformer: QFormerModel<unknown>;
  /** The whole BLIP-2 for captions, when the checkpoint has a language model. */
  readonly blip2?: Blip2Model<unknown> | undefined;
  readonly imageSize: number;
  /** Patches per side (the attention maps' grid). */
  readonly grid: number;
  /** Why a view is unavailable, by view. */
  readonly missing: { retrieval?: string; caption?: string };
}

/** Loads the vision tower, the Q-Former (with retrieval heads where present) and the LM. */
export async function loadModels(opened: OpenedBackend, bundle: CheckpointBundle): Promise<Models> {
  const cfg = parseModelConfig(bundle.config);
  if (!isBlip2Config(cfg))
    throw new Error('config.json is not a BLIP-2 / InstructBLIP model with a vision tower');
  const layout = detectCheckpointLayout(bundle.checkpoint.names());
  const canonicalName = (n: string) => toCanonicalName(layout, n);
  const { backend } = opened;
  const vision = await VisionModel.load(backend, bundle.checkpoint, cfg.vision, { canonicalName });
  const qformer = await loadQFormer(backend, bundle.checkpoint, bundle.config);
  const missing: Models['missing'] = {};
  if (!qformer.spec.retrievalHeads || !qformer.spec.textPath)
    missing.retrieval =
      'this checkpoint has no Q-Former text path or retrieval heads (itm_head, projections)';
  else if (!bundle.qformerTokenizer)
    missing.retrieval = 'no Q-Former tokenizer (qformer_tokenizer/tokenizer.json) for the candidate texts';
  let blip2: Blip2Model<unknown> | undefined;
  if (!cfg.text) missing.caption = 'this checkpoint has no language model (text_config)';
  else if (!bundle.tokenizer) missing.caption = 'no LM tokenizer (tokenizer.json) to decode captions';
  else blip2 = await Blip2Model.load(backend, bundle.checkpoint, bundle.config);
  const { imageSize, patchSize } = cfg.vision;
  return { opened, vision, qformer, blip2, imageSize, grid: imageSize / patchSize, missing };
}

export function disposeModels(m: Models): void {
  m.vision.dispose();
  m.qformer.dispose();
  m.blip2?.dispose();
}

/** What to analyse. */
export interface AnalysisInput {
  readonly query: RawImage;
  /** Images searched by text. */
  readonly gallery: readonly RawImage[];
  /** Texts ranked for the query image. */
  readonly candidates: readonly string[];
  /** The text searched for in the gallery. */
  readonly text: string;
  /** How many ITC leaders ITM re-ranks. */
  readonly rerankTop: number;
  readonly maxNewTokens: number;
}

/** One ranking: ITC for every item, then ITM for the best `rerankTop`. */
export interface Ranking {
  /** ITC similarity per item (max over query tokens of the cosine similarity). */
  readonly itc: number[];
  /** Item indices by ITC, best first. */
  readonly itcOrder: number[];
  /** The re-ranked leaders, best ITM match probability first. */
  readonly itm: { index: number; p: number }[];
}

export interface AnalysisResult {
  readonly i2t?: Ranking;
  readonly t2i?: Ranking;
  readonly caption?: { text: string; ids: number[] };
  /** Per cross-attending layer: [heads, Q, N] of the query image (N includes the class token). */
  readonly attention: { layer: number; heads: number; queries: number; tokens: number; data: Float32Array }[];
  /** Milliseconds per stage. */
  readonly timings: Record<string, number>;
}

/** Row `b` of a [B, ...] tensor as [1, ...]. */
function rows(t: HostTensor, idx: readonly number[]): HostTensor<'F32'> {
  const [b, ...rest] = t.shape as number[];
  const per = rest.reduce((a, v) => a * v, 1);
  const src = toFloat32(t);
  const out = new Float32Array(idx.length * per);
  idx.forEach((r, i) => {
    if (r < 0 || r >= (b as number)) throw new Error(`row ${r} out of range`);
    out.set(src.subarray(r * per, (r + 1) * per), i * per);
  });
  return { dtype: 'F32', shape: [idx.length, ...rest], data: out };
}

/** ITC: max over queries of image_feats[b, q] . text_feat[t] (both L2-normalised by the model). */
export function itcScores(imageFeats: HostTensor, textFeat: HostTensor): number[][] {
  const [b, q, d] = imageFeats.shape as [number, number, number];
  const t = textFeat.shape[0] as number;
  const img = toFloat32(imageFeats);
  const txt = toFloat32(textFeat);
  return Array.from({ length: b }, (_, i) =>
    Array.from({ length: t }, (_, j) => {
      let best = Number.NEGATIVE_INFINITY;
      for (let k = 0; k < q; k++) {
        let s = 0;
        for (let e = 0; e < d; e++) s += (img[(i * q + k) * d + e] as number) * (txt[j * d + e] as number);
        best = Math.max(best, s);
      }
      return best;
    }),
  );
}

const order = (xs: readonly number[]) =>
  xs.map((_, i) => i).sort((a, b) => (xs[b] as number) - (xs[a] as number));

/** p(match) of each row of ITM logits [K, 2]. */
function matchProbs(itm: HostTensor): number[] {
  const l = toFloat32(itm);
  return Array.from(
    { length: itm.shape[0] as number },
    (_, i) => 1 / (1 + Math.exp((l[2 * i] as number) - (l[2 * i + 1] as number))),
  );
}

async function timed<R>(timings: Record<string, number>, stage: string, f: () => Promise<R>): Promise<R> {
  const t0 = performance.now();
  try {
    return await f();
  } finally {
    timings[stage] = (timings[stage] ?? 0) + performance.now() - t0;
  }
}

/** Runs every view's computation for `input` on `m`'s backend. */
export async function analyze(
  m: Models,
  bundle: CheckpointBundle,
  input: AnalysisInput,
): Promise<AnalysisResult> {
  const timings: Record<string, number> = {};
  const t0 = performance.now();
  const images = [input.query, ...input.gallery];
  const pixels = preprocessImages(images, { imageSize: m.imageSize });
  const { vision_output: embeds } = await timed(timings, 'vision', () => m.vision.run(pixels));
  const q = await timed(timings, 'qformer', () =>
    m.qformer.run({ image_embeds: embeds }, { crossAttentions: true }),
  );
  const attention = Object.entries(q)
    .filter(([k]) => k.startsWith('cross_attentions.'))
    .map(([k, t]) => {
      const [, heads, queries, tokens] = t.shape as [number, number, number, number];
      return { layer: Number(k.split('.')[1]), heads, queries, tokens, data: rows(t, [0]).data };
    })
    .sort((a, b) => a.layer - b.layer);
  const result: { -readonly [K in keyof AnalysisResult]: AnalysisResult[K] } = { attention, timings };
  const tok = bundle.qformerTokenizer as TextTokenizer;
  const maxLength = m.qformer.spec.qformer.maxPositionEmbeddings;
  if (!m.missing.retrieval && q['image_feats']) {
    const texts = [...input.candidates, input.text];
    const batch = tok.encodeBatch(texts, { paddingSide: 'right', maxLength });
    const { textFeat } = await timed(timings, 'text', () =>
      m.qformer.encodeText(batch.input_ids, batch.attention_mask),
    );
    const sims = itcScores(q['image_feats'], textFeat as HostTensor);
    const c = input.candidates.length;
    // image-to-text: the query image (row 0) against the candidates
    const i2tItc = (sims[0] as number[]).slice(0, c);
    const i2tOrder = order(i2tItc);
    const top = i2tOrder.slice(0, Math.min(input.rerankTop, c));
    const topIds = tok.encodeBatch(
      top.map((i) => input.candidates[i] as string),
      { paddingSide: 'right', maxLength },
    );
    const i2tItm = await timed(timings, 'itm', () =>
      m.qformer.rerank(rows(embeds, [0]), topIds.input_ids, topIds.attention_mask),
    );
    const pi = matchProbs(i2tItm.itm);
    result.i2t = {
      itc: i2tItc,
      itcOrder: i2tOrder,
      itm: top.map((index, k) => ({ index, p: pi[k] as number })).sort((a, b) => b.p - a.p),
    };
    // text-to-image: the query text (last text) against the gallery (rows 1..)
    const t2iItc = sims.slice(1).map((r) => r[c] as number);
    const t2iOrder = order(t2iItc);
    const topImages = t2iOrder.slice(0, Math.min(input.rerankTop, t2iItc.length));
    const one = tok.encodeBatch(
      topImages.map(() => input.text),
      { paddingSide: 'right', maxLength },
    );
    const t2iItm = await timed(timings, 'itm', () =>
      m.qformer.rerank(
        rows(
          embeds,
          topImages.map((i) => i + 1),
        ),
        one.input_ids,
        one.attention_mask,
      ),
    );
    const pt = matchProbs(t2iItm.itm);
    result.t2i = {
      itc: t2iItc,
      itcOrder: t2iOrder,
      itm: topImages.map((index, k) => ({ index, p: pt[k] as number })).sort((a, b) => b.p - a.p),
    };
  }
  if (m.blip2 && bundle.tokenizer) {
    const blip2 = m.blip2;
    const [cap] = await timed(timings, 'caption', () =>
      blip2.captionDetailed([input.query], { tokenizer: bundle.tokenizer, maxNewTokens: input.maxNewTokens }),
    );
    if (cap) result.caption = { text: cap.caption, ids: cap.generated };
  }
  timings['total'] = performance.now() - t0;
  return result;
}
