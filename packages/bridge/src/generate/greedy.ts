import { TensorError } from '@qf/io';
import type { DecodingSession } from '../lm/types.js';
import {
  type GenerateOptions,
  type GenerateResult,
  applyMinLength,
  eosList,
  maxSteps,
  stackScores,
} from './options.js';

/** Checks that a session returned [rows, V] logits. */
export function checkLogits(logits: Float32Array, rows: number, vocabSize: number): void {
  if (logits.length !== rows * vocabSize)
    throw new TensorError(
      'TENSOR_SHAPE',
      'logits',
      'session returned wrong logits size',
      `${rows * vocabSize}`,
      `${logits.length}`,
    );
}

/** Index of the first maximum of `x[from, from + n)` minus `from` (torch.argmax). */
export function argmaxRow(x: Float32Array, from: number, n: number): number {
  let best = 0;
  let bestValue = x[from] as number;
  for (let i = 1; i < n; i++) {
    const v = x[from + i] as number;
    if (v > bestValue) {
      bestValue = v;
      best = i;
    }
  }
  return best;
}

/**
 * Greedy decoding (HF `_sample` with `do_sample=False`): each step picks the argmax of the processed
 * logits; a row that produced EOS gets `padTokenId` from then on; stops when every row finished or at
 * the length limit. Scores are the processed logits of every step, finished rows included.
 */
export async function greedySearch(session: DecodingSession, o: GenerateOptions): Promise<GenerateResult> {
  const rows = session.rows;
  const v = session.vocabSize;
  const eos = eosList(o.eosTokenId);
  const pad = o.padTokenId ?? eos[0];
  const steps = maxSteps(o);
  const tokens: Int32Array[] = [];
  const scores: Float32Array[] = [];
  const unfinished = new Uint8Array(rows).fill(1);
  let logits = await session.prefill();
  for (let t = 0; t < steps; t++) {
    checkLogits(logits, rows, v);
    const processed = logits.slice();
    applyMinLength(processed, v, t, o, eos);
    scores.push(processed);
    const next = new Int32Array(rows);
    let open = 0;
    for (let r = 0; r < rows; r++) {
      if (eos.length > 0 && !unfinished[r]) {
        next[r] = pad as number;
        continue;
      }
      next[r] = argmaxRow(processed, r * v, v);
      if (eos.includes(next[r] as number)) unfinished[r] = 0;
      else open++;
    }
    tokens.push(next);
    if (t + 1 >= steps || (eos.length > 0 && open === 0)) break;
    logits = await session.step(next);
  }
  const n = tokens.length;
  const sequences = new Int32Array(rows * n);
  tokens.forEach((col, t) => {
    for (const [r, id] of col.entries()) sequences[r * n + t] = id;
  });
  return {
    sequences: { dtype: 'I32', shape: [rows, n], data: sequences },
    scores: stackScores(scores, rows, v),
  };
}
