import { type HostTensor, TensorError } from '@qf/io';
import { describe, expect, it } from 'vitest';
import { causalLmTargets, seq2seqTargets } from '../src/loss.js';
import { projectorParamSpecs } from '../src/projector.js';
import { IGNORE_INDEX, decoderOnlyLabels, softPromptMask } from '../src/soft-prompt.js';

const i64 = (shape: number[], values: number[]): HostTensor<'I64'> => ({
  dtype: 'I64',
  shape,
  data: BigInt64Array.from(values, (v) => BigInt(v)),
});
const X = IGNORE_INDEX;

describe('soft-prompt assembly (host helpers)', () => {
  const ids = i64([2, 4], [2, 11, 12, 13, 1, 2, 21, 22]);
  const mask = i64([2, 4], [1, 1, 1, 1, 0, 1, 1, 1]);

  it('builds the LM mask [ones(Q) ; text mask]', () => {
    const m = softPromptMask(3, mask);
    expect(m.shape).toEqual([2, 7]);
    expect(Array.from(m.data)).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1]);
  });

  it('labels: -100 on query positions, prompt tokens (counted from the first real token) and padding', () => {
    const l = decoderOnlyLabels(ids, mask, { queryLength: 2, promptLength: 2 });
    expect(l.shape).toEqual([2, 6]);
    expect(Array.from(l.data)).toEqual([X, X, X, X, 12, 13, X, X, X, X, X, 22]);
    const perRow = decoderOnlyLabels(ids, mask, { promptLength: [1, 0] });
    expect(Array.from(perRow.data)).toEqual([X, 11, 12, 13, X, 2, 21, 22]);
  });

  it('rejects mismatched shapes with a TensorError naming the input', () => {
    expect(() => decoderOnlyLabels(ids, i64([2, 3], [1, 1, 1, 1, 1, 1]))).toThrow(/attention_mask/);
    expect(() => decoderOnlyLabels(ids, mask, { promptLength: [1] })).toThrow(TensorError);
    expect(() => softPromptMask(2, i64([4], [1, 1, 1, 1]))).toThrow(TensorError);
  });

  it('lists the projector parameters', () => {
    expect(projectorParamSpecs(64, 40)).toEqual([
      { name: 'language_projection.weight', shape: [40, 64] },
      { name: 'language_projection.bias', shape: [40] },
    ]);
  });
});

describe('loss targets', () => {
  const v = 5;
  it('decoder-only: labels aligned with the last T logits, shifted by one (HF BLIP-2)', () => {
    // L = 4 logits positions, labels over the last 3: position 1 predicts labels[1], position 2 labels[2].
    const t = causalLmTargets(i64([1, 3], [4, 3, X]), 4, v);
    expect(Array.from(t.weight.data)).toEqual([0, 1, 0, 0]);
    expect(t.index.data[1]).toBe(1 * v + 3);
    expect(t.count).toBe(1);
    // Full-length labels: plain shift.
    const full = causalLmTargets(i64([2, 3], [0, 1, 2, 3, 4, 0]), 3, v);
    expect(Array.from(full.weight.data)).toEqual([1, 1, 0, 1, 1, 0]);
    expect(Array.from(full.index.data)).toEqual([0 * v + 1, 1 * v + 2, 2 * v, 3 * v + 4, 4 * v + 0, 5 * v]);
  });

  it('encoder-decoder: no shift', () => {
    const t = seq2seqTargets(i64([1, 3], [4, X, 2]), v);
    expect(Array.from(t.weight.data)).toEqual([1, 0, 1]);
    expect(Array.from(t.index.data)).toEqual([4, 1 * v, 2 * v + 2]);
    expect(t.count).toBe(2);
  });

  it('rejects labels outside the vocabulary or longer than the logits', () => {
    expect(() => seq2seqTargets(i64([1, 2], [5, 0]), v)).toThrow(/"labels".*out of range/);
    expect(() => seq2seqTargets(i64([1, 2], [-3, 0]), v)).toThrow(TensorError);
    expect(() => causalLmTargets(i64([1, 4], [1, 1, 1, 1]), 3, v)).toThrow(/longer than the logits/);
  });
});
