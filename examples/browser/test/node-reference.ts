// Node's answer for the page's inputs, computed with the Node packages (tfjs-cpu) and library calls
// only, independently of the app's own code: ITC and ITM of every image-text pair from
// `QFormerModel.run` (its `itc_logits` and `itm_logits`), the caption from `Blip2Model`, the
// attention maps from `run(..., { crossAttentions: true })`.
import { createTfjsBackend } from '@qf/backends/tfjs';
import { loadBlip2FromDir, loadTokenizer } from '@qf/bridge/node';
import { type QFormerModel, VisionModel, preprocessImages } from '@qf/core';
import { loadQFormerFromDir } from '@qf/core/node';
import { type HostTensor, parseBlip2Config, toFloat32 } from '@qf/io';
import { openCheckpointDir } from '@qf/io/node';
import { generateShapes } from '@qf/shapes';

export interface NodeReference {
  readonly gallery: string[];
  /** ITC of the query image with every candidate, and ITM p(match) of every candidate. */
  readonly i2t: { itc: number[]; itm: number[] };
  /** ITC of the text with every gallery image, and ITM p(match) of every pair. */
  readonly t2i: { itc: number[]; itm: number[] };
  readonly caption: { text: string; ids: number[] };
  /** Layer -> [heads, Q, N] of the query image. */
  readonly attention: Map<number, Float32Array>;
}

export interface ReferenceInputs {
  readonly seed: number;
  readonly query: number;
  readonly text: string;
  readonly candidates: readonly string[];
  readonly gallerySize: number;
  readonly maxNewTokens: number;
}

const pMatch = (itm: HostTensor) => {
  const l = toFloat32(itm);
  return Array.from(
    { length: itm.shape[0] as number },
    (_, i) => 1 / (1 + Math.exp(l[2 * i]! - l[2 * i + 1]!)),
  );
};

function slice(t: HostTensor, from: number, to: number): HostTensor {
  const [b, ...rest] = t.shape as number[];
  const per = rest.reduce((a, v) => a * v, 1);
  if (to > b!) throw new Error('slice out of range');
  return { dtype: 'F32', shape: [to - from, ...rest], data: toFloat32(t).slice(from * per, to * per) };
}

/** Row 0 of `t` repeated `n` times. */
function repeat(t: HostTensor, n: number): HostTensor {
  const [, ...rest] = t.shape as number[];
  const per = rest.reduce((a, v) => a * v, 1);
  const one = t.data.slice(0, per) as Float32Array | BigInt64Array;
  const out = t.dtype === 'I64' ? new BigInt64Array(per * n) : new Float32Array(per * n);
  for (let i = 0; i < n; i++) out.set(one as never, i * per);
  return { dtype: t.dtype, shape: [n, ...rest], data: out } as HostTensor;
}

/**
 * Scores one image [1, N, E] against T texts with one `run` over the image repeated T times:
 * row 0 of itc_logits [T, T], and itm_logits [T, 2] (image t = the image, with text t).
 */
async function scoreTexts(q: QFormerModel<unknown>, image: HostTensor, ids: HostTensor, mask: HostTensor) {
  const t = ids.shape[0] as number;
  const out = await q.run({ image_embeds: repeat(image, t), input_ids: ids, attention_mask: mask });
  return { itc: Array.from(toFloat32(out['itc_logits']!).subarray(0, t)), itm: pMatch(out['itm_logits']!) };
}

export async function nodeReference(dir: string, inp: ReferenceInputs): Promise<NodeReference> {
  const backend = await createTfjsBackend('cpu');
  const { config, checkpoint } = await openCheckpointDir(dir);
  const cfg = parseBlip2Config(config);
  const vision = await VisionModel.load(backend, checkpoint, cfg.vision);
  await checkpoint.close();
  const qformer = await loadQFormerFromDir(backend, dir);
  const { model: blip2, tokenizer } = await loadBlip2FromDir(backend, dir, { requireTokenizer: true });
  const qTok = await loadTokenizer(dir, 'qformer_tokenizer');
  try {
    const size = Math.min(1024, Math.max(24, cfg.vision.imageSize));
    const gallery = generateShapes({
      seed: inp.seed,
      imageSize: size,
      counts: { train: 0, validation: 0, test: inp.gallerySize },
    }).test;
    const query = gallery[inp.query]!;
    const pixels = preprocessImages([query.image, ...gallery.map((g) => g.image)], {
      imageSize: cfg.vision.imageSize,
    });
    const embeds = (await vision.run(pixels)).vision_output;
    const qEmbeds = slice(embeds, 0, 1);
    const maxLength = cfg.qformer.maxPositionEmbeddings;
    const cands = qTok.encodeBatch(inp.candidates, { paddingSide: 'right', maxLength });
    const i2t = await scoreTexts(qformer, qEmbeds, cands.input_ids, cands.attention_mask);
    // text-to-image: every gallery image with the text; itc_logits [G, G] has the text in every column
    const g = gallery.length;
    const one = qTok.encodeBatch([inp.text], { paddingSide: 'right', maxLength });
    const out = await qformer.run({
      image_embeds: slice(embeds, 1, g + 1),
      input_ids: repeat(one.input_ids, g),
      attention_mask: repeat(one.attention_mask, g),
    });
    const itcAll = toFloat32(out['itc_logits']!);
    const t2i = { itc: Array.from({ length: g }, (_, i) => itcAll[i * g]!), itm: pMatch(out['itm_logits']!) };
    const attnOut = await qformer.run({ image_embeds: qEmbeds }, { crossAttentions: true });
    const attention = new Map<number, Float32Array>();
    for (const [k, v] of Object.entries(attnOut))
      if (k.startsWith('cross_attentions.')) attention.set(Number(k.split('.')[1]), toFloat32(v));
    const [cap] = await blip2.captionDetailed([query.image], { tokenizer, maxNewTokens: inp.maxNewTokens });
    return {
      gallery: gallery.map((e) => e.caption),
      i2t,
      t2i,
      caption: { text: cap!.caption, ids: cap!.generated },
      attention,
    };
  } finally {
    vision.dispose();
    qformer.dispose();
    blip2.dispose();
  }
}
