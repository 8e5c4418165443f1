import type { DecodingSession } from '../lm/types.js';
import { checkLogits } from './greedy.js';
import {
  type GenerateOptions,
  type GenerateResult,
  applyMinLength,
  eosList,
  maxSteps,
  stackScores,
} from './options.js';

/**
 * Beam search with the semantics of HF transformers 4.47 (`GenerationMixin._beam_search` with
 * `BeamSearchScorer` / `BeamHypotheses`), decoder-only or encoder-decoder alike:
 * - per step, scores = log_softmax(logits) -> processors -> + running beam score; beams 1.. start
 *   at -1e9 so the first step expands beam 0 only;
 * - per input row the top `max(2, 1 + #eos) * numBeams` (beam, token) candidates in order: an EOS
 *   candidate ranked below `numBeams` is dropped, a better one becomes a finished hypothesis scored
 *   `sum_logprobs / generated_len ** lengthPenalty` (generated_len counts the EOS); the first
 *   `numBeams` non-EOS candidates become the next beams;
 * - a row is done by `earlyStopping` (see {@link GenerateOptions.earlyStopping}) using the best
 *   candidate score of the step; done rows feed pad tokens with score 0;
 * - at the end, open beams of unfinished rows are added as hypotheses (no EOS), and the best
 *   `numReturnSequences` are returned, EOS appended where it fits, padded to the longest.
 * Arithmetic on scores is rounded to float32 like PyTorch's; ties go to the lower (beam, token) index.
 */

interface Hypothesis {
  readonly score: number;
  /** Generated tokens, without the final EOS. */
  readonly tokens: readonly number[];
  readonly finished: boolean;
}

/** HF `BeamHypotheses`: the best `numBeams` hypotheses of one input row. */
class BeamHypotheses {
  readonly beams: Hypothesis[] = [];
  private worst = 1e9;

  constructor(
    private readonly numBeams: number,
    private readonly lengthPenalty: number,
    private readonly earlyStopping: boolean | 'never',
    private readonly maxNew: number,
  ) {}

  get size(): number {
    return this.beams.length;
  }

  add(tokens: readonly number[], sumLogprobs: number, generatedLen: number, finished: boolean): void {
    const score = sumLogprobs / generatedLen ** this.lengthPenalty;
    if (this.beams.length < this.numBeams || score > this.worst) {
      this.beams.push({ score, tokens, finished });
      if (this.beams.length > this.numBeams) {
        // sorted([(s, idx)]): the lowest score (lowest index among ties) goes; worst := the next one.
        const order = this.beams
          .map((b, i) => [b.score, i] as const)
          .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
        this.beams.splice((order[0] as readonly [number, number])[1], 1);
        this.worst = (order[1] as readonly [number, number])[0];
      } else {
        this.worst = Math.min(score, this.worst);
      }
    }
  }

  isDone(bestSumLogprobs: number, generatedLen: number): boolean {
    if (this.beams.length < this.numBeams) return false;
    if (this.earlyStopping === true) return true;
    let denominator = generatedLen;
    if (this.earlyStopping === 'never' && this.lengthPenalty > 0) denominator = this.maxNew;
    return this.worst >= bestSumLogprobs / denominator ** this.lengthPenalty;
  }
}

const f32 = Math.fround;

/** Row-wise log_softmax of [rows, V] logits (float32 result). */
function logSoftmaxRows(logits: Float32Array, vocabSize: number): Float32Array {
  const out = new Float32Array(logits.length);
  for (let r = 0; r * vocabSize < logits.length; r++) {
    const from = r * vocabSize;
    let m = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < vocabSize; i++) m = Math.max(m, logits[from + i] as number);
    let sum = 0;
    for (let i = 0; i < vocabSize; i++) sum += Math.exp((logits[from + i] as number) - m);
    const lse = m + Math.log(sum);
    for (let i = 0; i < vocabSize; i++) out[from + i] = (logits[from + i] as number) - lse;
  }
  return out;
}

/** Indices of the k largest of `x` in descending order (ties: lower index first); O(len * k). */
function topK(x: Float32Array, k: number): number[] {
  const idx: number[] = [];
  for (let i = 0; i < x.length; i++) {
    const value = x[i] as number;
    if (idx.length === k && !(value > (x[idx[k - 1] as number] as number))) continue;
    let j = Math.min(idx.length, k - 1);
    while (j > 0 && value > (x[idx[j - 1] as number] as number)) j--;
    idx.splice(j, 0, i);
    if (idx.length > k) idx.pop();
  }
  return idx;
}

/** See the module comment. `session.rows` is the batch size B; the session is expanded to B * numBeams rows. */
export async function beamSearch(session: DecodingSession, o: GenerateOptions): Promise<GenerateResult> {
  const n = o.numBeams ?? 1;
  const batch = session.rows;
  const v = session.vocabSize;
  const eos = eosList(o.eosTokenId);
  const pad = o.padTokenId ?? eos[0];
  const steps = maxSteps(o);
  const keep = o.numReturnSequences ?? 1;
  const lp = o.lengthPenalty ?? 1;
  if (!Number.isInteger(n) || n < 2)
    throw new RangeError(`beamSearch: numBeams must be an integer >= 2, got ${n}`);
  if (!Number.isInteger(keep) || keep < 1 || keep > n)
    throw new RangeError(`beamSearch: numReturnSequences must be in 1..${n}, got ${keep}`);
  const rows = batch * n;
  const hyps = Array.from(
    { length: batch },
    () => new BeamHypotheses(n, lp, o.earlyStopping ?? false, steps),
  );
  const done = new Array<boolean>(batch).fill(false);
  const candidates = Math.max(2, 1 + eos.length) * n;

  const prefill = await session.prefill();
  checkLogits(prefill, batch, v);
  const expand = Int32Array.from({ length: rows }, (_, i) => Math.floor(i / n));
  session.reorder(expand);
  let logits: Float32Array = new Float32Array(rows * v);
  expand.forEach((from, to) => {
    logits.set(prefill.subarray(from * v, (from + 1) * v), to * v);
  });

  let beamScores = new Float32Array(rows);
  for (let b = 0; b < batch; b++) beamScores.fill(-1e9, b * n + 1, (b + 1) * n);
  let history: number[][] = Array.from({ length: rows }, () => []);
  const scores: Float32Array[] = [];

  for (let t = 1; ; t++) {
    checkLogits(logits, rows, v);
    const processed = logSoftmaxRows(logits, v);
    applyMinLength(processed, v, t - 1, o, eos);
    scores.push(processed);
    const nextScores = new Float32Array(rows);
    const nextTokens = new Int32Array(rows);
    const nextIndex = new Int32Array(rows);
    for (let b = 0; b < batch; b++) {
      if (done[b]) {
        // HF pads a finished row: score 0, pad token, source row 0.
        nextTokens.fill(pad ?? 0, b * n, (b + 1) * n);
        continue;
      }
      const flat = new Float32Array(n * v);
      for (let k = 0; k < n; k++) {
        const row = b * n + k;
        const base = beamScores[row] as number;
        for (let i = 0; i < v; i++) flat[k * v + i] = f32((processed[row * v + i] as number) + base);
      }
      const top = topK(flat, candidates);
      let filled = 0;
      for (const [rank, c] of top.entries()) {
        const source = b * n + Math.floor(c / v);
        const token = c % v;
        const score = flat[c] as number;
        if (eos.includes(token)) {
          if (rank >= n) continue;
          hyps[b]?.add(history[source] as number[], score, t, true);
        } else {
          nextScores[b * n + filled] = score;
          nextTokens[b * n + filled] = token;
          nextIndex[b * n + filled] = source;
          filled++;
        }
        if (filled === n) break;
      }
      if (filled < n) throw new RangeError(`beamSearch: too few non-EOS candidates for row ${b}`);
      const best = flat[top[0] as number] as number;
      done[b] = (hyps[b] as BeamHypotheses).isDone(best, t);
    }
    beamScores = nextScores;
    history = Array.from(nextIndex, (from, i) => [...(history[from] as number[]), nextTokens[i] as number]);
    if (t >= steps || done.every(Boolean)) break;
    session.reorder(nextIndex);
    logits = await session.step(nextTokens);
  }
  return finalize(hyps, done, beamScores, history, { n, keep, steps, eos, pad, scores, rows, v });
}

function finalize(
  hyps: BeamHypotheses[],
  done: readonly boolean[],
  beamScores: Float32Array,
  history: number[][],
  c: {
    n: number;
    keep: number;
    steps: number;
    eos: readonly number[];
    pad: number | undefined;
    scores: Float32Array[];
    rows: number;
    v: number;
  },
): GenerateResult {
  hyps.forEach((h, b) => {
    if (done[b]) return;
    for (let k = 0; k < c.n; k++) {
      const row = b * c.n + k;
      const tokens = history[row] as number[];
      h.add(tokens, beamScores[row] as number, tokens.length, false);
    }
  });
  const best: Hypothesis[] = [];
  for (const h of hyps) {
    // sorted(beams, key=score) is stable; pop() takes the last of equal scores.
    const sorted = h.beams
      .map((hyp, i) => ({ hyp, i }))
      .sort((a, b) => a.hyp.score - b.hyp.score || a.i - b.i);
    for (let j = 0; j < c.keep; j++) best.push((sorted.pop() as { hyp: Hypothesis }).hyp);
  }
  const lengths = best.map((h) => h.tokens.length);
  const width = Math.min(Math.max(...lengths) + 1, c.steps);
  const out = new Int32Array(best.length * width);
  if (Math.min(...lengths) !== Math.max(...lengths)) {
    if (c.pad === undefined)
      throw new RangeError('beamSearch: padTokenId (or an EOS id) is needed to pad outputs');
    out.fill(c.pad);
  }
  best.forEach((h, i) => {
    out.set(h.tokens, i * width);
    if (h.tokens.length < width) out[i * width + h.tokens.length] = c.eos[0] as number;
  });
  return {
    sequences: { dtype: 'I32', shape: [best.length, width], data: out },
    scores: stackScores(c.scores, c.rows, c.v),
    sequenceScores: { dtype: 'F32', shape: [best.length], data: Float32Array.from(best, (h) => h.score) },
  };
}
