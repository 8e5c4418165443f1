import { describe, expect, it } from 'vitest';
import {
  beamSearch,
  blip2DecoderOnlyLengths,
  generate,
  greedySearch,
  withPrompt,
} from '../src/generate/index.js';
import { FakeSession, type LogitsTable, logits, randomTable } from './fake-session.js';

const rowsOf = (t: { shape: readonly number[]; data: ArrayLike<number> }): number[][] => {
  const [r, c] = t.shape as [number, number];
  return Array.from({ length: r }, (_, i) => Array.from(t.data).slice(i * c, (i + 1) * c) as number[]);
};

function logSoftmax(x: ArrayLike<number>): number[] {
  const a = Array.from(x);
  const m = Math.max(...a);
  const lse = m + Math.log(a.reduce((s, v) => s + Math.exp(v - m), 0));
  return a.map((v) => v - lse);
}

interface Candidate {
  readonly tokens: number[];
  readonly finished: boolean;
  readonly score: number;
}

/** Every sequence of at most `maxNew` tokens (finished by an EOS or open at the limit), best first. */
function enumerateAll(
  table: LogitsTable,
  row: number,
  vocab: number,
  eos: number[],
  maxNew: number,
  lp: number,
): Candidate[] {
  const out: Candidate[] = [];
  const walk = (prefix: number[], sum: number) => {
    const lps = logSoftmax(table(row, prefix));
    for (let tok = 0; tok < vocab; tok++) {
      const s = sum + (lps[tok] as number);
      if (eos.includes(tok))
        out.push({ tokens: prefix, finished: true, score: s / (prefix.length + 1) ** lp });
      else if (prefix.length + 1 === maxNew)
        out.push({ tokens: [...prefix, tok], finished: false, score: s / maxNew ** lp });
      else walk([...prefix, tok], s);
    }
  };
  walk([], 0);
  return out.sort((a, b) => b.score - a.score);
}

describe('greedy search (HF _sample, do_sample=False)', () => {
  // V = 4, EOS = 3, pad = 0. Row 0: 1 then EOS; row 1: always 2.
  const table: LogitsTable = (row, prefix) =>
    row === 0 ? (prefix.length === 0 ? [0, 2, 1, 0.5] : [0.1, 0.2, 0.3, 4 + prefix.length]) : [0, 1, 3, 2];

  it('takes the argmax, pads rows after their EOS and records the raw logits of every step', async () => {
    const session = new FakeSession(2, 4, table);
    const res = await greedySearch(session, { maxNewTokens: 4, eosTokenId: 3, padTokenId: 0 });
    expect(rowsOf(res.sequences)).toEqual([
      [1, 3, 0, 0],
      [2, 2, 2, 2],
    ]);
    expect(res.scores.shape).toEqual([2, 4, 4]);
    // Row 0 keeps being scored after its EOS (HF does), from the prefixes it was fed (pad tokens).
    const prefixes0 = [[], [1], [1, 3], [1, 3, 0]];
    const expected = [0, 1].flatMap((r) =>
      prefixes0.flatMap((p, t) => Array.from(table(r, r === 0 ? p : [2, 2, 2].slice(0, t)))),
    );
    expect(Array.from(res.scores.data)).toEqual(expected.map(Math.fround));
    expect(session.steps).toBe(3); // no model call after the last token
    expect(res.sequenceScores).toBeUndefined();
  });

  it('stops as soon as every row has finished', async () => {
    const allEos: LogitsTable = (row, prefix) => (prefix.length === row ? [0, 0, 0, 9] : [0, 5, 0, 0]);
    const session = new FakeSession(2, 4, allEos);
    const res = await greedySearch(session, { maxNewTokens: 10, eosTokenId: 3, padTokenId: 0 });
    expect(rowsOf(res.sequences)).toEqual([
      [3, 0],
      [1, 3],
    ]);
    expect(res.scores.shape).toEqual([2, 2, 4]);
    expect(session.steps).toBe(1);
  });

  it('treats every id of an EOS list as an end and pads with the first EOS by default', async () => {
    const t: LogitsTable = (row) => (row === 0 ? [0, 0, 5, 0] : [0, 0, 0, 5]);
    const res = await greedySearch(new FakeSession(2, 4, t), { maxNewTokens: 3, eosTokenId: [3, 2] });
    expect(rowsOf(res.sequences)).toEqual([[2], [3]]);
    const noEos = await greedySearch(new FakeSession(2, 4, t), { maxNewTokens: 3 });
    expect(rowsOf(noEos.sequences)).toEqual([
      [2, 2, 2],
      [3, 3, 3],
    ]);
  });

  it('suppresses EOS below min_length (prompt ids + new tokens) and min_new_tokens; scores show -inf', async () => {
    const t: LogitsTable = () => [0, 1, 0, 5];
    const byLength = await greedySearch(new FakeSession(1, 4, t), {
      maxNewTokens: 5,
      eosTokenId: 3,
      padTokenId: 0,
      minLength: 4,
      promptLength: 2,
    });
    // curLen = 2 + generated: EOS is allowed from the third new token on.
    expect(rowsOf(byLength.sequences)).toEqual([[1, 1, 3]]);
    const s = Array.from(byLength.scores.data);
    expect([s[3], s[7], s[11]]).toEqual([Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY, 5]);
    const byNew = await greedySearch(new FakeSession(1, 4, t), {
      maxNewTokens: 5,
      eosTokenId: 3,
      minNewTokens: 1,
    });
    expect(rowsOf(byNew.sequences)).toEqual([[1, 3]]);
  });

  it('honours max_length over prompt ids + new tokens, and takes the first of tied maxima', async () => {
    const t: LogitsTable = () => [1, 3, 3, 0];
    const res = await generate(new FakeSession(1, 4, t), { maxNewTokens: 9, maxLength: 5, promptLength: 2 });
    expect(rowsOf(res.sequences)).toEqual([[1, 1, 1]]);
    await expect(
      greedySearch(new FakeSession(1, 4, t), { maxNewTokens: 3, maxLength: 2, promptLength: 2 }),
    ).rejects.toThrow(/no room for new tokens/);
  });
});

describe('beam search (HF 4.47 BeamSearchScorer semantics)', () => {
  for (const [lp, eos] of [
    [1, [3]],
    [0, [3]],
    [2, [3]],
    [-1, [3]],
    [1, [2, 3]],
  ] as const) {
    it(`with beams >= all candidates finds the exhaustive best (length_penalty ${lp}, eos ${eos})`, async () => {
      const vocab = 4;
      const maxNew = 3;
      const table = randomTable(vocab, 11 + lp * 3 + eos.length);
      const session = new FakeSession(2, vocab, table);
      const res = await beamSearch(session, {
        maxNewTokens: maxNew,
        numBeams: 40,
        numReturnSequences: 3,
        eosTokenId: [...eos],
        padTokenId: 0,
        lengthPenalty: lp,
        earlyStopping: 'never',
      });
      const width = res.sequences.shape[1] as number;
      const got = rowsOf(res.sequences);
      for (let row = 0; row < 2; row++) {
        const all = enumerateAll(table, row, vocab, [...eos], maxNew, lp);
        expect(all.length).toBe(eos.length === 1 ? 40 : 22);
        for (
          let j = 0;
          j < 3;
          j++ // no near-ties among the compared ranks
        )
          expect((all[j] as Candidate).score - (all[j + 1] as Candidate).score).toBeGreaterThan(1e-4);
        for (let j = 0; j < 3; j++) {
          const c = all[j] as Candidate;
          const seq = [...c.tokens, ...(c.finished ? [eos[0]] : [])];
          while (seq.length < width) seq.push(0);
          expect(got[row * 3 + j], `row ${row} rank ${j}`).toEqual(seq);
          expect(res.sequenceScores?.data[row * 3 + j]).toBeCloseTo(c.score, 5);
        }
      }
      expect(res.scores.shape).toEqual([80, maxNew, vocab]);
    });
  }

  // V = 4: a = 0, b = 1, e1 = 2, e2 = 3 (two EOS ids). Root: e1 .4, e2 .35, a .25.
  // After a: b .328, c-less mass on e1/e2; after [a, b]: e1 .999. Everything else uniform.
  const heuristicTable: LogitsTable = (_row, prefix) => {
    const key = prefix.join(',');
    if (key === '') return logits(0.25, 0, 0.4, 0.35);
    if (key === '0') return logits(0.3, 0.328, 0.2, 0.172);
    if (key === '0,1') return logits(0.0005, 0.0005, 0.999, 0);
    return logits(0.25, 0.25, 0.25, 0.25);
  };

  it('early_stopping=false stops on the heuristic that early_stopping="never" sees through', async () => {
    const opts = { maxNewTokens: 3, numBeams: 2, eosTokenId: [2, 3], padTokenId: 0 } as const;
    const heuristic = await beamSearch(new FakeSession(1, 4, heuristicTable), opts);
    // Step 1 finishes [e1] (-0.916) and [e2] (-1.05); at step 2 the best candidate (-2.5) / 2 <= -1.05.
    expect(rowsOf(heuristic.sequences)).toEqual([[2]]);
    expect(heuristic.sequenceScores?.data[0]).toBeCloseTo(Math.log(0.4), 5);
    expect(heuristic.scores.shape).toEqual([2, 2, 4]);
    const exact = await beamSearch(new FakeSession(1, 4, heuristicTable), {
      ...opts,
      earlyStopping: 'never',
    });
    expect(rowsOf(exact.sequences)).toEqual([[0, 1, 2]]);
    expect(exact.sequenceScores?.data[0]).toBeCloseTo(
      (Math.log(0.25) + Math.log(0.328) + Math.log(0.999)) / 3,
      5,
    );
  });

  it('early_stopping=true stops once numBeams hypotheses are finished; the EOS written is the first id', async () => {
    const t: LogitsTable = (_row, prefix) =>
      prefix.length === 0 ? logits(0.2, 0, 0.3, 0.5) : logits(0.9, 0.1, 0, 0);
    const session = new FakeSession(1, 4, t);
    const res = await beamSearch(session, {
      maxNewTokens: 4,
      numBeams: 2,
      eosTokenId: [2, 3],
      earlyStopping: true,
      numReturnSequences: 2,
    });
    // The best hypothesis ended with e2 (3), HF's finalize appends eos_token_id[0] (2).
    expect(rowsOf(res.sequences)).toEqual([[2], [2]]);
    expect(Array.from(res.sequenceScores?.data ?? [])).toEqual(
      [Math.log(0.5), Math.log(0.3)].map(Math.fround),
    );
    expect(session.steps).toBe(0);
  });

  it('drops an EOS candidate ranked below numBeams, even when it would make the returned list', async () => {
    // V = 8, EOS ids 6 and 7. Root ranks: e1 (.35) 0, a (.3) 1, e2 (.25) 2 -> dropped, b (.1) 3.
    // Later steps are nearly flat, so open beams end far below [e2]'s log(.25).
    const flat = [0, -0.01, -0.02, -0.03, -0.04, -0.05, -0.06, -0.07];
    const t: LogitsTable = (_row, prefix) =>
      prefix.length === 0 ? logits(0.3, 0.1, 0, 0, 0, 0, 0.35, 0.25) : flat;
    const res = await beamSearch(new FakeSession(1, 8, t), {
      maxNewTokens: 3,
      numBeams: 2,
      eosTokenId: [6, 7],
      padTokenId: 4,
      numReturnSequences: 2,
    });
    const lsFlat = logSoftmax(flat);
    const open = (Math.log(0.3) + 2 * (lsFlat[0] as number)) / 3;
    expect(Math.log(0.25)).toBeGreaterThan(open); // [e2] would have been the second hypothesis
    expect(rowsOf(res.sequences)).toEqual([
      [6, 4, 4],
      [0, 0, 0],
    ]);
    expect(res.sequenceScores?.data[0]).toBeCloseTo(Math.log(0.35), 5);
    expect(res.sequenceScores?.data[1]).toBeCloseTo(open, 5);
  });

  it('pads shorter hypotheses after their EOS; open ones get no EOS; min_new_tokens holds EOS back', async () => {
    const t: LogitsTable = (row, prefix) =>
      row === 0
        ? logits(0.12, 0.1, 0.08, 0.7)
        : prefix.length < 2
          ? logits(0.6, 0.3, 0.1, 0)
          : logits(0.2, 0.2, 0.15, 0.45);
    const res = await beamSearch(new FakeSession(2, 4, t), {
      maxNewTokens: 3,
      numBeams: 2,
      eosTokenId: 3,
      padTokenId: 1,
    });
    expect(rowsOf(res.sequences)).toEqual([
      [3, 1, 1],
      [0, 0, 3],
    ]);
    const held = await beamSearch(new FakeSession(2, 4, t), {
      maxNewTokens: 3,
      numBeams: 2,
      eosTokenId: 3,
      padTokenId: 1,
      minNewTokens: 3,
    });
    const s = held.scores.data;
    for (let row = 0; row < 4; row++)
      for (let step = 0; step < 3; step++) expect(s[(row * 3 + step) * 4 + 3]).toBe(Number.NEGATIVE_INFINITY);
    expect(rowsOf(held.sequences)[0]).toEqual([0, 0, 0]);
  });

  it('gives every batch row the result it gets alone (rows finishing at different steps)', async () => {
    const table = randomTable(6, 5);
    const opts = { maxNewTokens: 5, numBeams: 3, eosTokenId: 5, padTokenId: 0, numReturnSequences: 2 };
    const batched = await beamSearch(new FakeSession(3, 6, table), opts);
    for (let row = 0; row < 3; row++) {
      const alone = await beamSearch(new FakeSession(1, 6, (_r, p) => table(row, p)), opts);
      const [, w] = alone.sequences.shape as [number, number];
      const b = rowsOf(batched.sequences).slice(row * 2, row * 2 + 2);
      expect(b.map((r) => r.slice(0, w))).toEqual(rowsOf(alone.sequences));
      for (const r of b) expect(r.slice(w).every((x) => x === 0)).toBe(true);
      expect(Array.from(batched.sequenceScores?.data ?? []).slice(row * 2, row * 2 + 2)).toEqual(
        Array.from(alone.sequenceScores?.data ?? []),
      );
    }
  });

  it('rejects bad beam settings', async () => {
    const t = randomTable(4, 1);
    await expect(beamSearch(new FakeSession(1, 4, t), { maxNewTokens: 2, numBeams: 1 })).rejects.toThrow(
      /numBeams/,
    );
    await expect(
      beamSearch(new FakeSession(1, 4, t), { maxNewTokens: 2, numBeams: 2, numReturnSequences: 3 }),
    ).rejects.toThrow(/numReturnSequences/);
  });
});

describe('prompt and length helpers', () => {
  it('prepends prompt rows as HF decoder-only generate does', () => {
    const prompt = { dtype: 'I64' as const, shape: [2, 2], data: BigInt64Array.of(2n, 5n, 1n, 2n) };
    const gen = { dtype: 'I32' as const, shape: [4, 1], data: Int32Array.of(7, 8, 9, 10) };
    expect(rowsOf(withPrompt(prompt, gen, 2))).toEqual([
      [2, 5, 7],
      [2, 5, 8],
      [1, 2, 9],
      [1, 2, 10],
    ]);
  });

  it('reproduces BLIP-2 generate lengths (max_new_tokens overrides; min_length lowered by Q + T)', () => {
    expect(blip2DecoderOnlyLengths({ queryLength: 4, promptLength: 6, maxNewTokens: 5 })).toEqual({
      maxNewTokens: 5,
      minLength: 0,
      minNewTokens: undefined,
      promptLength: 6,
    });
    // min_length 10 + Q, minus (Q + T) = 9, compared with T + new tokens: EOS allowed from new token 9.
    expect(blip2DecoderOnlyLengths({ queryLength: 4, promptLength: 1, minLength: 10 }).minLength).toBe(9);
    // max_length 20 + Q - 1 - (Q + T), compared with T + new tokens.
    expect(blip2DecoderOnlyLengths({ queryLength: 4, promptLength: 1 }).maxNewTokens).toBe(17);
    expect(blip2DecoderOnlyLengths({ queryLength: 4, promptLength: 3, minNewTokens: 2 }).minLength).toBe(5);
  });
});
