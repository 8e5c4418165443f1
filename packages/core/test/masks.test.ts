import type { HostTensor } from '@qf/io';
import { describe, expect, it } from 'vitest';
import { stage1Keep } from '../src/masks.js';

const mask = (rows: number[][]): HostTensor<'I64'> => ({
  dtype: 'I64',
  shape: [rows.length, rows[0]!.length],
  data: BigInt64Array.from(rows.flat().map(BigInt)),
});

/** Row i of batch b of a keep matrix as a string of 0/1. */
function row(k: HostTensor<'F32'>, b: number, i: number): string {
  const l = k.shape[1]!;
  return Array.from(k.data.subarray((b * l + i) * l, (b * l + i + 1) * l)).join('');
}

describe('stage-1 mask builders', () => {
  const textMask = mask([
    [1, 1, 1],
    [1, 1, 0],
  ]);
  const q = 2;

  it('unimodal (ITC): queries see queries, text sees non-pad text', () => {
    const k = stage1Keep('unimodal', q, textMask);
    expect(k.shape).toEqual([2, 5, 5]);
    expect(row(k, 0, 0)).toBe('11000');
    expect(row(k, 0, 2)).toBe('00111');
    expect(row(k, 1, 1)).toBe('11000');
    expect(row(k, 1, 2)).toBe('00110');
    expect(row(k, 1, 4)).toBe('00110');
  });

  it('bidirectional (ITM): everyone sees queries and non-pad text', () => {
    const k = stage1Keep('bidirectional', q, textMask);
    for (let i = 0; i < 5; i++) {
      expect(row(k, 0, i)).toBe('11111');
      expect(row(k, 1, i)).toBe('11110');
    }
  });

  it('multimodal-causal (ITG): queries never see text; text sees queries and earlier text', () => {
    const k = stage1Keep('multimodal-causal', q, textMask);
    expect(row(k, 0, 0)).toBe('11000');
    expect(row(k, 0, 1)).toBe('11000');
    expect(row(k, 0, 2)).toBe('11100');
    expect(row(k, 0, 3)).toBe('11110');
    expect(row(k, 0, 4)).toBe('11111');
    expect(row(k, 1, 4)).toBe('11110');
  });

  it('names the tensor on a bad mask shape', () => {
    const bad: HostTensor<'I64'> = { dtype: 'I64', shape: [3], data: new BigInt64Array(3) };
    expect(() => stage1Keep('unimodal', 2, bad)).toThrow(/attention_mask.*\[B, T\].*\[3\]/);
  });
});
