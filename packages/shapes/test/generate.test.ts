import { describe, expect, it } from 'vitest';
import {
  CAPTION_WORDS,
  generateShapes,
  OBJECT_COUNT,
  PAIR_COUNT,
  parseCaption,
  type ShapeExample,
  type ShapesDataset,
  sceneFromId,
  sceneIdOf,
  shapesStatistics,
} from '../src/index.js';
import { captionFromPixels } from './oracle.js';

const small = { train: 600, validation: 100, test: 150 };
const splits = (ds: ShapesDataset) => [ds.train, ds.validation, ds.test] as const;
const hex = (ex: ShapeExample) => Buffer.from(ex.image.data).toString('base64');

describe('generateShapes', () => {
  const ds = generateShapes({ seed: 42, counts: small });

  it('is deterministic: same seed, same bytes and captions; other seed, other data', () => {
    const again = generateShapes({ seed: 42, counts: small });
    for (const [a, b] of splits(ds).map((s, k) => [s, splits(again)[k]] as const)) {
      expect(b?.map((e) => e.caption)).toEqual(a.map((e) => e.caption));
      expect(b?.map(hex)).toEqual(a.map(hex));
    }
    const other = generateShapes({ seed: 43, counts: small });
    expect(other.test.map((e) => e.caption)).not.toEqual(ds.test.map((e) => e.caption));
    expect(other.train.map(hex)).not.toEqual(ds.train.map(hex));
  });

  it('fills the requested counts with the default shape and one-object share', () => {
    expect(ds.train).toHaveLength(600);
    expect(ds.validation).toHaveLength(100);
    expect(ds.test).toHaveLength(150);
    expect(ds.train.filter((e) => e.objects.length === 1)).toHaveLength(120);
    expect(ds.test.filter((e) => e.objects.length === 1)).toHaveLength(30);
    expect(ds.vocabulary).toEqual(CAPTION_WORDS);
    expect(ds.options).toEqual({
      seed: 42,
      imageSize: 32,
      counts: small,
      singleFraction: 0.2,
      heldOut: true,
      noise: 0,
    });
    for (const ex of ds.test) {
      expect(ex.image).toMatchObject({ width: 32, height: 32, channels: 3 });
      expect(ex.image.data).toHaveLength(32 * 32 * 3);
    }
    const def = generateShapes({ seed: 0 });
    expect([def.train.length, def.validation.length, def.test.length]).toEqual([4000, 200, 200]);
  });

  it('every caption parses back to its objects and sceneId, and is read back from the pixels alone', () => {
    for (const split of splits(ds)) {
      for (const ex of split) {
        const scene = parseCaption(ex.caption);
        expect(scene).toBeDefined();
        expect(scene?.objects).toEqual(
          ex.objects.map(({ shape, colour, size }) => ({ shape, colour, size })),
        );
        expect(scene?.relation).toBe(ex.relation);
        expect(sceneIdOf(scene!)).toBe(ex.sceneId);
        expect(sceneFromId(ex.sceneId)).toEqual(scene);
        expect(captionFromPixels(ex.image)).toBe(ex.caption);
      }
    }
  });

  it('pixel-identical images always have the same caption', () => {
    const byPixels = new Map<string, string>();
    for (const split of splits(ds)) {
      for (const ex of split) {
        const seen = byPixels.get(hex(ex));
        if (seen !== undefined) expect(seen).toBe(ex.caption);
        byPixels.set(hex(ex), ex.caption);
      }
    }
  });

  it('test and validation captions are distinct; held-out two-object captions never occur in train', () => {
    for (const split of [ds.test, ds.validation])
      expect(new Set(split.map((e) => e.caption)).size).toBe(split.length);
    const train = new Set(ds.train.map((e) => e.caption));
    const pairsInTrain = ds.test.filter((e) => e.objects.length === 2 && train.has(e.caption));
    expect(pairsInTrain).toHaveLength(0);
    const testPairs = new Set(ds.test.filter((e) => e.relation).map((e) => e.sceneId));
    expect(ds.validation.filter((e) => testPairs.has(e.sceneId))).toHaveLength(0);
    // Reported, not a target: with heldOut only one-object test captions can occur in train.
    const st = shapesStatistics(ds);
    expect(st.test.captionInTrain).toBe(ds.test.filter((e) => train.has(e.caption)).length);
    console.info(`test captions also in train: ${st.test.captionInTrain}/${st.test.examples}`);
    // Train still sees every object in every slot of both relations.
    for (const relation of ['left of', 'above'] as const) {
      for (const slot of [0, 1]) {
        const seen = new Set(
          ds.train
            .filter((e) => e.relation === relation)
            .map((e) => JSON.stringify({ ...e.objects[slot], x: 0, y: 0 })),
        );
        expect(seen.size, `${relation} slot ${slot}`).toBe(OBJECT_COUNT);
      }
    }
  });

  it('heldOut: false lets test captions overlap train (and still keeps test captions distinct)', () => {
    const open = generateShapes({ seed: 42, counts: small, heldOut: false });
    const train = new Set(open.train.map((e) => e.caption));
    expect(new Set(open.test.map((e) => e.caption)).size).toBe(open.test.length);
    expect(open.test.filter((e) => e.relation && train.has(e.caption)).length).toBeGreaterThan(0);
  });

  it('the test split does not depend on the train or validation counts', () => {
    const other = generateShapes({ seed: 42, counts: { ...small, train: 50, validation: 7 } });
    expect(other.test.map(hex)).toEqual(ds.test.map(hex));
    expect(other.test.map((e) => e.caption)).toEqual(ds.test.map((e) => e.caption));
  });

  it('train repeats descriptions as evenly as possible', () => {
    const big = generateShapes({ seed: 1, counts: { train: 4000, validation: 0, test: 0 } });
    const singles = new Map<number, number>();
    for (const e of big.train)
      if (e.objects.length === 1) singles.set(e.sceneId, (singles.get(e.sceneId) ?? 0) + 1);
    expect(singles.size).toBe(OBJECT_COUNT);
    expect(Math.max(...singles.values()) - Math.min(...singles.values())).toBeLessThanOrEqual(1);
    const pairIds = new Set(big.train.filter((e) => e.relation).map((e) => e.sceneId));
    expect(pairIds.size).toBe(3200); // 3200 < 4608: no two-object description repeats
  });

  it('noise, image size and one-object share are honoured', () => {
    const noisy = generateShapes({
      seed: 3,
      counts: { train: 5, validation: 0, test: 5 },
      noise: 8,
      imageSize: 48,
    });
    const clean = generateShapes({ seed: 3, counts: { train: 5, validation: 0, test: 5 }, imageSize: 48 });
    expect(noisy.test[0]?.image.data).toHaveLength(48 * 48 * 3);
    expect(noisy.test.map((e) => e.caption)).toEqual(clean.test.map((e) => e.caption));
    expect(noisy.test.map(hex)).not.toEqual(clean.test.map(hex));
    const pairsOnly = generateShapes({
      seed: 3,
      counts: { train: 20, validation: 5, test: 5 },
      singleFraction: 0,
    });
    expect(
      splits(pairsOnly)
        .flat()
        .every((e) => e.objects.length === 2),
    ).toBe(true);
    const singlesOnly = generateShapes({
      seed: 3,
      counts: { train: 20, validation: 60, test: 5 },
      singleFraction: 1,
    });
    expect(singlesOnly.train.every((e) => e.objects.length === 1)).toBe(true);
    expect(singlesOnly.validation.filter((e) => e.objects.length === 1)).toHaveLength(OBJECT_COUNT); // capped
  });

  it('rejects invalid options', () => {
    expect(() => generateShapes({ seed: 1.5 })).toThrow(RangeError);
    expect(() => generateShapes({ seed: 1, imageSize: 20 })).toThrow(RangeError);
    expect(() => generateShapes({ seed: 1, counts: { train: -1 } })).toThrow(RangeError);
    expect(() => generateShapes({ seed: 1, singleFraction: 2 })).toThrow(RangeError);
    expect(() => generateShapes({ seed: 1, noise: 100 })).toThrow(RangeError);
    expect(() =>
      generateShapes({ seed: 1, counts: { train: 10, validation: 0, test: PAIR_COUNT + OBJECT_COUNT } }),
    ).toThrow(RangeError);
  });
});
