/** Summary statistics of a generated dataset (used by `pnpm stats` and the README table). */
import type { ShapeExample, ShapesDataset } from './generate.js';

export interface SplitStatistics {
  readonly examples: number;
  readonly oneObject: number;
  readonly leftOf: number;
  readonly above: number;
  readonly distinctCaptions: number;
  /** Examples whose caption also occurs in train (for train itself: examples). */
  readonly captionInTrain: number;
  /** Caption length in words. */
  readonly words: { readonly min: number; readonly max: number; readonly mean: number };
  /** Mean share of non-background pixels. */
  readonly foreground: number;
}

export interface ShapesStatistics {
  readonly train: SplitStatistics;
  readonly validation: SplitStatistics;
  readonly test: SplitStatistics;
  /** How often each caption word occurs in train captions. */
  readonly trainWordCounts: Readonly<Record<string, number>>;
}

function splitStatistics(
  split: readonly ShapeExample[],
  trainCaptions: ReadonlySet<string>,
): SplitStatistics {
  let words = 0;
  let min = Number.POSITIVE_INFINITY;
  let max = 0;
  let foreground = 0;
  for (const ex of split) {
    const n = ex.caption.split(' ').length;
    words += n;
    min = Math.min(min, n);
    max = Math.max(max, n);
    const d = ex.image.data;
    let fg = 0;
    for (let p = 0; p < d.length; p += 3)
      if ((d[p] as number) | (d[p + 1] as number) | (d[p + 2] as number)) fg++;
    foreground += fg / (d.length / 3);
  }
  const count = split.length || 1;
  return {
    examples: split.length,
    oneObject: split.filter((e) => e.relation === undefined).length,
    leftOf: split.filter((e) => e.relation === 'left of').length,
    above: split.filter((e) => e.relation === 'above').length,
    distinctCaptions: new Set(split.map((e) => e.caption)).size,
    captionInTrain: split.filter((e) => trainCaptions.has(e.caption)).length,
    words: { min: split.length ? min : 0, max, mean: words / count },
    foreground: foreground / count,
  };
}

/** Statistics of the three splits. */
export function shapesStatistics(ds: ShapesDataset): ShapesStatistics {
  const trainCaptions = new Set(ds.train.map((e) => e.caption));
  const trainWordCounts: Record<string, number> = Object.fromEntries(ds.vocabulary.map((w) => [w, 0]));
  for (const ex of ds.train)
    for (const w of ex.caption.split(' ')) trainWordCounts[w] = (trainWordCounts[w] ?? 0) + 1;
  return {
    train: splitStatistics(ds.train, trainCaptions),
    validation: splitStatistics(ds.validation, trainCaptions),
    test: splitStatistics(ds.test, trainCaptions),
    trainWordCounts,
  };
}
