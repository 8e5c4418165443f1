/**
 * Retrieval and captioning metrics on host arrays (no tensor library): recall at K from a
 * similarity matrix, ITM re-ranking of the top K, caption exact match and token accuracy.
 */

/** A row-major similarity matrix: `data[i * cols + j]` scores query i against candidate j. */
export interface SimMatrix {
  readonly rows: number;
  readonly cols: number;
  readonly data: Float32Array;
}

/** The transpose (text-to-image from image-to-text). */
export function transpose(m: SimMatrix): SimMatrix {
  const data = new Float32Array(m.rows * m.cols);
  for (let i = 0; i < m.rows; i++)
    for (let j = 0; j < m.cols; j++) data[j * m.rows + i] = m.data[i * m.cols + j] as number;
  return { rows: m.cols, cols: m.rows, data };
}

/**
 * 0-based rank of candidate `positive` in row `i`: the number of candidates scored strictly higher,
 * plus those scored equal that come before it (ties broken by index, as a stable sort would).
 */
export function rankOf(m: SimMatrix, i: number, positive: number): number {
  const p = m.data[i * m.cols + positive] as number;
  let rank = 0;
  for (let j = 0; j < m.cols; j++) {
    const s = m.data[i * m.cols + j] as number;
    if (s > p || (s === p && j < positive)) rank++;
  }
  return rank;
}

/**
 * Recall at each K: the share of rows whose positive (`positives[i]`, default the diagonal) ranks
 * in the top K.
 */
export function recallAtK(m: SimMatrix, ks: readonly number[], positives?: ArrayLike<number>): number[] {
  const ranks = Array.from({ length: m.rows }, (_, i) =>
    rankOf(m, i, positives ? (positives[i] as number) : i),
  );
  return ks.map((k) => ranks.filter((r) => r < k).length / Math.max(1, m.rows));
}

/** Indices of the `k` highest scores of row `i`, best first (ties by index). */
export function topK(m: SimMatrix, i: number, k: number): number[] {
  const idx = Array.from({ length: m.cols }, (_, j) => j);
  const row = m.data.subarray(i * m.cols, (i + 1) * m.cols);
  idx.sort((a, b) => (row[b] as number) - (row[a] as number) || a - b);
  return idx.slice(0, Math.min(k, m.cols));
}

/**
 * LAVIS's re-ranking (`compute_sim_matrix`): every score is -100 except the ITC top `k` of each
 * row, which get `itm(i, j) + itc(i, j)`. `itm(i, candidates)` returns the ITM match logits of row
 * `i` against the given candidates.
 */
export async function rerankTopK(
  itc: SimMatrix,
  k: number,
  itm: (i: number, candidates: readonly number[]) => Promise<ArrayLike<number>>,
): Promise<SimMatrix> {
  const data = new Float32Array(itc.rows * itc.cols).fill(-100);
  for (let i = 0; i < itc.rows; i++) {
    const top = topK(itc, i, k);
    const scores = await itm(i, top);
    top.forEach((j, r) => {
      data[i * itc.cols + j] = (scores[r] as number) + (itc.data[i * itc.cols + j] as number);
    });
  }
  return { rows: itc.rows, cols: itc.cols, data };
}

/** Share of hypotheses equal to their reference. */
export function exactMatch(hypotheses: readonly string[], references: readonly string[]): number {
  if (hypotheses.length !== references.length) throw new RangeError('exactMatch: lengths differ');
  let hit = 0;
  hypotheses.forEach((h, i) => {
    if (h === references[i]) hit++;
  });
  return hit / Math.max(1, references.length);
}

/**
 * Token accuracy: over every reference token (caption words and the final end token), the share
 * that the hypothesis has at the same position. A hypothesis that stops early or runs on loses the
 * positions it gets wrong; extra tokens past the reference's end are not counted.
 */
export function tokenAccuracy(
  hypotheses: readonly (readonly number[])[],
  references: readonly (readonly number[])[],
): number {
  if (hypotheses.length !== references.length) throw new RangeError('tokenAccuracy: lengths differ');
  let hit = 0;
  let total = 0;
  references.forEach((ref, i) => {
    const hyp = hypotheses[i] as readonly number[];
    ref.forEach((id, p) => {
      total++;
      if (hyp[p] === id) hit++;
    });
  });
  return hit / Math.max(1, total);
}
