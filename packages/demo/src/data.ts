import { preprocessImages } from '@qf/core';
import type { HostTensor } from '@qf/io';
import { type ShapeExample, type ShapesDataset, generateShapes, shapesVocabulary } from '@qf/shapes';
import { PATCH_SLOTS, SLOTS, patchLabels, slotLabels } from './aux.js';
import { DemoError } from './errors.js';

/** Longest caption in words ("a small red circle left of a large blue square"). */
export const MAX_WORDS = 10;
/** Token length of both vocabularies: a special token each side of the longest caption. */
export const TEXT_LENGTH = MAX_WORDS + 2;

/** One split as tensors. */
export interface SplitTensors {
  readonly examples: readonly ShapeExample[];
  /** [B, 3, S, S] F32, BLIP-2 preprocessing (CLIP mean/std). */
  readonly pixels: HostTensor<'F32'>;
  /** [B, SLOTS] I32: the class of each slot, -100 where ignored. */
  readonly slots: Int32Array;
  /** [B, patches, PATCH_SLOTS] I32: the classes of each patch's object. */
  readonly patches: Int32Array;
  /** [B, T] I32 Q-Former ids `[CLS] words [SEP]`, `[PAD]` after. */
  readonly qformerIds: Int32Array;
  readonly qformerMask: Int32Array;
  /** [B, T] I32 LM ids `</s> words </s>`, `<pad>` after. */
  readonly lmIds: Int32Array;
  readonly lmMask: Int32Array;
}

export interface DemoData {
  readonly dataset: ShapesDataset;
  readonly train: SplitTensors;
  readonly validation: SplitTensors;
  readonly test: SplitTensors;
}

/** Token ids of both vocabularies. */
export const TOKENS = (() => {
  const v = shapesVocabulary();
  const q = new Map(v.qformer.tokens.map((t, i) => [t, i]));
  const l = new Map(v.lm.tokens.map((t, i) => [t, i]));
  const id = (m: Map<string, number>, t: string) => m.get(t) as number;
  return {
    qformer: {
      map: q,
      size: v.qformer.tokens.length,
      pad: id(q, v.qformer.pad),
      cls: id(q, v.qformer.cls),
      sep: id(q, v.qformer.sep),
      dec: id(q, v.qformer.dec),
      words: v.qformer.tokens,
    },
    lm: {
      map: l,
      size: v.lm.tokens.length,
      pad: id(l, v.lm.pad),
      bos: id(l, v.lm.bos),
      eos: id(l, v.lm.eos),
      words: v.lm.tokens,
    },
  };
})();

function encode(caption: string, map: Map<string, number>, first: number, last: number, pad: number) {
  const words = caption.split(' ');
  if (words.length > MAX_WORDS)
    throw new DemoError('DEMO_DATA', `caption longer than ${MAX_WORDS} words: "${caption}"`);
  const ids = new Int32Array(TEXT_LENGTH).fill(pad);
  const mask = new Int32Array(TEXT_LENGTH);
  ids[0] = first;
  words.forEach((w, i) => {
    const id = map.get(w);
    if (id === undefined) throw new DemoError('DEMO_DATA', `word "${w}" is not in the vocabulary`);
    ids[i + 1] = id;
  });
  ids[words.length + 1] = last;
  mask.fill(1, 0, words.length + 2);
  return { ids, mask };
}

/** Q-Former ids of one caption: `[CLS] words [SEP]`, padded to {@link TEXT_LENGTH}. */
export function qformerTokens(caption: string): { ids: Int32Array; mask: Int32Array } {
  const q = TOKENS.qformer;
  return encode(caption, q.map, q.cls, q.sep, q.pad);
}

/** LM ids of one caption: `</s> words </s>`, padded to {@link TEXT_LENGTH}. */
export function lmTokens(caption: string): { ids: Int32Array; mask: Int32Array } {
  const l = TOKENS.lm;
  return encode(caption, l.map, l.bos, l.eos, l.pad);
}

/** LM ids back to a caption (stops at `</s>`, drops specials). */
export function lmDecode(ids: ArrayLike<number>): string {
  const out: string[] = [];
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i] as number;
    if (id === TOKENS.lm.eos) break;
    if (id < 4) continue;
    out.push(TOKENS.lm.words[id] as string);
  }
  return out.join(' ');
}

/** Tensors of one split. */
export function splitTensors(
  examples: readonly ShapeExample[],
  imageSize: number,
  patchSize: number,
): SplitTensors {
  const n = examples.length;
  const t = TEXT_LENGTH;
  const slots = new Int32Array(n * SLOTS.length);
  const grid = Math.floor(imageSize / patchSize);
  const perImage = grid * grid * PATCH_SLOTS.length;
  const patches = new Int32Array(n * perImage);
  const qIds = new Int32Array(n * t);
  const qMask = new Int32Array(n * t);
  const lIds = new Int32Array(n * t);
  const lMask = new Int32Array(n * t);
  examples.forEach((ex, i) => {
    slots.set(slotLabels(ex), i * SLOTS.length);
    patches.set(patchLabels(ex, patchSize, grid), i * perImage);
    const q = qformerTokens(ex.caption);
    qIds.set(q.ids, i * t);
    qMask.set(q.mask, i * t);
    const l = lmTokens(ex.caption);
    lIds.set(l.ids, i * t);
    lMask.set(l.mask, i * t);
  });
  const pixels = preprocessImages(
    examples.map((e) => e.image),
    { imageSize, doResize: false },
  );
  return {
    examples,
    pixels,
    slots,
    patches,
    qformerIds: qIds,
    qformerMask: qMask,
    lmIds: lIds,
    lmMask: lMask,
  };
}

/** The first `n` examples of a split (views, no copies). */
export function headRows(split: SplitTensors, n: number): SplitTensors {
  const total = split.examples.length;
  if (n >= total) return split;
  const per = (a: { length: number }) => a.length / total;
  const head = <A extends Float32Array | Int32Array>(a: A): A => a.subarray(0, n * per(a)) as A;
  const [, ...rest] = split.pixels.shape;
  return {
    examples: split.examples.slice(0, n),
    pixels: { dtype: 'F32', shape: [n, ...rest], data: head(split.pixels.data) },
    slots: head(split.slots),
    patches: head(split.patches),
    qformerIds: head(split.qformerIds),
    qformerMask: head(split.qformerMask),
    lmIds: head(split.lmIds),
    lmMask: head(split.lmMask),
  };
}

/** Generates the shapes splits and their tensors. */
export function demoData(
  seed: number,
  counts: { train: number; validation: number; test: number },
  imageSize: number,
  patchSize: number,
): DemoData {
  const dataset = generateShapes({ seed, imageSize, counts });
  return {
    dataset,
    train: splitTensors(dataset.train, imageSize, patchSize),
    validation: splitTensors(dataset.validation, imageSize, patchSize),
    test: splitTensors(dataset.test, imageSize, patchSize),
  };
}

/** Rows `idx` of a row-major [N, ...] array with `width` values per row. */
export function gatherRows<A extends Float32Array | Int32Array>(
  data: A,
  width: number,
  idx: ArrayLike<number>,
): A {
  const out = new (data.constructor as new (n: number) => A)(idx.length * width);
  for (let i = 0; i < idx.length; i++) {
    const r = idx[i] as number;
    out.set(data.subarray(r * width, (r + 1) * width), i * width);
  }
  return out;
}
