import { describe, expect, it } from 'vitest';
import {
  type SimMatrix,
  exactMatch,
  rankOf,
  recallAtK,
  rerankTopK,
  tokenAccuracy,
  topK,
  transpose,
} from '../src/metrics.js';

const m = (rows: number[][]): SimMatrix => ({
  rows: rows.length,
  cols: rows[0]?.length ?? 0,
  data: Float32Array.from(rows.flat()),
});

describe('retrieval metrics', () => {
  // Row i's positive is column i.
  const sim = m([
    [0.9, 0.1, 0.2, 0.0], // rank 0
    [0.5, 0.4, 0.3, 0.6], // rank 2 (0.5 and 0.6 above)
    [0.1, 0.2, 0.3, 0.3], // rank 0 (tie with col 3, broken by index)
    [0.4, 0.4, 0.4, 0.4], // rank 3 (all tied, last index)
  ]);

  it('ranks the positive, ties broken by index', () => {
    expect([0, 1, 2, 3].map((i) => rankOf(sim, i, i))).toEqual([0, 2, 0, 3]);
  });

  it('recall at K', () => {
    expect(recallAtK(sim, [1, 2, 3, 4])).toEqual([0.5, 0.5, 0.75, 1]);
    expect(recallAtK(sim, [1], [0, 3, 2, 0])).toEqual([1]); // explicit positives: all rank first
  });

  it('transposes (text-to-image from image-to-text)', () => {
    const t = transpose(
      m([
        [1, 2, 3],
        [4, 5, 6],
      ]),
    );
    expect([t.rows, t.cols, Array.from(t.data)]).toEqual([3, 2, [1, 4, 2, 5, 3, 6]]);
    expect(recallAtK(transpose(sim), [1])).toEqual([0.5]);
  });

  it('top K, best first', () => {
    expect(topK(sim, 1, 2)).toEqual([3, 0]);
    expect(topK(sim, 3, 10)).toEqual([0, 1, 2, 3]);
  });

  it('re-ranks only the top K (LAVIS: -100 elsewhere, ITM + ITC inside)', async () => {
    const calls: number[][] = [];
    const re = await rerankTopK(sim, 2, async (i, cands) => {
      calls.push([i, ...cands]);
      return cands.map((j) => (j === i ? 10 : 0)); // an ITM head that knows the answer
    });
    expect(calls).toEqual([
      [0, 0, 2],
      [1, 3, 0],
      [2, 2, 3],
      [3, 0, 1],
    ]);
    expect(re.data[1 * 4 + 1]).toBe(-100); // not in row 1's top 2
    expect(re.data[0]).toBeCloseTo(10.9);
    // Rows 0 and 2 had the positive in their top 2: re-ranking puts it first; rows 1 and 3 did not.
    expect(recallAtK(re, [1])).toEqual([0.5]);
  });
});

describe('caption metrics', () => {
  it('exact match', () => {
    expect(exactMatch(['a red circle', 'a blue square'], ['a red circle', 'a blue circle'])).toBe(0.5);
    expect(() => exactMatch(['x'], [])).toThrow(RangeError);
  });

  it('token accuracy counts reference positions only', () => {
    // refs end with the end token (2); hyp 0 is right, hyp 1 stops early, hyp 2 runs on.
    const refs = [
      [5, 6, 2],
      [5, 6, 7, 2],
      [8, 2],
    ];
    const hyps = [
      [5, 6, 2, 1],
      [5, 2, 1, 1],
      [8, 9, 2, 1],
    ];
    // right: 3 + 1 + 1 = 5 of 9
    expect(tokenAccuracy(hyps, refs)).toBeCloseTo(5 / 9);
  });
});
