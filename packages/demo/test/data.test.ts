import { generateShapes } from '@qf/shapes';
import { describe, expect, it } from 'vitest';
import { PATCH_SLOTS, SLOTS, patchLabels, slotLabels } from '../src/aux.js';
import { TEXT_LENGTH, TOKENS, lmDecode, lmTokens, qformerTokens, splitTensors } from '../src/data.js';

describe('tokens', () => {
  it('Q-Former: [CLS] words [SEP], [PAD] after', () => {
    const { ids, mask } = qformerTokens('a small red circle');
    const w = (t: string) => TOKENS.qformer.map.get(t);
    expect(Array.from(ids)).toEqual([2, w('a'), w('small'), w('red'), w('circle'), 3, 0, 0, 0, 0, 0, 0]);
    expect(Array.from(mask)).toEqual([1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0]);
    expect(ids.length).toBe(TEXT_LENGTH);
  });

  it('LM: </s> words </s> with OPT ids, and back', () => {
    const caption = 'a large blue square left of a small white cross';
    const { ids, mask } = lmTokens(caption);
    expect([ids[0], ids[11], TOKENS.lm.pad, TOKENS.lm.bos]).toEqual([2, 2, 1, 2]);
    expect(mask.reduce((a, b) => a + b, 0)).toBe(12);
    expect(lmDecode(ids.subarray(1))).toBe(caption);
    expect(lmDecode([TOKENS.lm.map.get('a') as number, 1, TOKENS.lm.map.get('red') as number, 2, 4])).toBe(
      'a red',
    );
  });

  it('rejects words outside the vocabulary', () => {
    expect(() => qformerTokens('a small purple circle')).toThrow(/not in the vocabulary/);
  });
});

describe('auxiliary labels', () => {
  const ds = generateShapes({ seed: 3, counts: { train: 50, validation: 4, test: 4 } });
  it('global slots follow the caption order; missing slots are ignored', () => {
    for (const ex of ds.train) {
      const l = slotLabels(ex);
      expect(l).toHaveLength(SLOTS.length);
      const words = ex.caption.split(' ');
      expect(l[3]).toBe(ex.objects.length - 1);
      if (ex.objects.length === 1) expect(l.slice(4)).toEqual([-100, -100, -100, -100]);
      else expect(l[7]).toBe(words.includes('above') ? 1 : 0);
    }
  });

  it('patch labels: background 0, object patches carry its colour/shape/size and order', () => {
    const ex = ds.train.find((e) => e.objects.length === 2) as (typeof ds.train)[number];
    const lab = patchLabels(ex, 8, 4);
    expect(lab).toHaveLength(16 * PATCH_SLOTS.length);
    const orders = new Set<number>();
    for (let p = 0; p < 16; p++) {
      const [c, s, z, o] = Array.from(lab.subarray(p * 4, p * 4 + 4));
      if (o === 0) expect([c, s, z]).toEqual([0, 0, 0]);
      else {
        expect(c).toBeGreaterThan(0);
        orders.add(o as number);
      }
    }
    expect([...orders].sort()).toEqual([1, 2]);
  });

  it('split tensors hold every row', () => {
    const t = splitTensors(ds.validation, 32, 8);
    expect(t.pixels.shape).toEqual([4, 3, 32, 32]);
    expect(t.slots.length).toBe(4 * SLOTS.length);
    expect(t.patches.length).toBe(4 * 16 * PATCH_SLOTS.length);
    expect(t.qformerIds.length).toBe(4 * TEXT_LENGTH);
  });
});
