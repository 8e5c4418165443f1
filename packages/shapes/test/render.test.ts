import { describe, expect, it } from 'vitest';
import {
  addNoise,
  COLOUR_RGB,
  captionOf,
  createRng,
  insideShape,
  type PlacedObject,
  placeScene,
  RELATIONS,
  renderScene,
  SHAPES,
  SIZES,
  type Scene,
  type ShapeImage,
  type ShapeObject,
  shapesGeometry,
} from '../src/index.js';
import { captionFromPixels } from './oracle.js';

const maskCount = (shape: (typeof SHAPES)[number], e: number) => {
  let n = 0;
  for (let j = 0; j < e; j++) for (let i = 0; i < e; i++) if (insideShape(shape, i, j, e)) n++;
  return n;
};

/** Centroid of the non-background pixels inside a placed object's box. */
function centroid(image: ShapeImage, o: PlacedObject): [number, number] {
  let [sx, sy, n] = [0, 0, 0];
  for (let y = o.y; y < o.y + o.extent; y++) {
    for (let x = o.x; x < o.x + o.extent; x++) {
      const p = (y * image.width + x) * 3;
      if (image.data[p] || image.data[p + 1] || image.data[p + 2]) {
        sx += x;
        sy += y;
        n++;
      }
    }
  }
  return [sx / n, sy / n];
}

describe('geometry', () => {
  it('has clearly distinct sizes at the default 32 px and scales with the image', () => {
    expect(shapesGeometry(32)).toEqual({ imageSize: 32, small: 8, large: 13, margin: 1, gap: 2 });
    expect(shapesGeometry(64)).toMatchObject({ small: 16, large: 26, gap: 4 });
    for (const bad of [23, 32.5, 2048]) expect(() => shapesGeometry(bad)).toThrow(RangeError);
  });

  it('shape masks are distinct, and large ones cover at least twice the pixels of small ones', () => {
    for (const e of [6, 8, 9, 13]) {
      for (const a of SHAPES) {
        for (const b of SHAPES) {
          if (a === b) continue;
          let diff = 0;
          for (let j = 0; j < e; j++)
            for (let i = 0; i < e; i++) diff += +(insideShape(a, i, j, e) !== insideShape(b, i, j, e));
          expect(diff, `${a} vs ${b} at ${e}`).toBeGreaterThanOrEqual(e >= 8 ? 8 : 4);
        }
      }
    }
    for (const s of SHAPES) expect(maskCount(s, 13)).toBeGreaterThanOrEqual(2 * maskCount(s, 8));
    expect(maskCount('square', 8)).toBe(64);
    // A circle misses its corners; a triangle is narrow at the top and full at the bottom.
    expect(insideShape('circle', 0, 0, 8)).toBe(false);
    expect(insideShape('circle', 0, 3, 8)).toBe(true);
    expect([0, 1, 2, 3, 4, 5, 6, 7].filter((i) => insideShape('triangle', i, 7, 8))).toHaveLength(8);
    expect([0, 1, 2, 3, 4, 5, 6, 7].filter((i) => insideShape('triangle', i, 1, 8))).toEqual([3, 4]);
  });
});

describe('renderScene', () => {
  it('paints object pixels in the object colour and leaves the background black', () => {
    const scene = {
      objects: [
        { shape: 'square', colour: 'yellow', size: 'small', x: 2, y: 3, extent: 8 },
        { shape: 'circle', colour: 'magenta', size: 'large', x: 15, y: 5, extent: 13 },
      ],
      relation: 'left of',
    } as const;
    const img = renderScene(scene, 32);
    expect(img).toMatchObject({ width: 32, height: 32, channels: 3 });
    expect(img.data).toHaveLength(32 * 32 * 3);
    const px = (x: number, y: number) =>
      Array.from(img.data.subarray((y * 32 + x) * 3, (y * 32 + x) * 3 + 3));
    for (let y = 3; y < 11; y++) for (let x = 2; x < 10; x++) expect(px(x, y)).toEqual([255, 255, 0]);
    expect(px(15 + 6, 5 + 6)).toEqual([...COLOUR_RGB.magenta]);
    expect(px(15, 5)).toEqual([0, 0, 0]); // circle corner
    expect(px(0, 0)).toEqual([0, 0, 0]);
    expect(px(12, 3)).toEqual([0, 0, 0]);
    let painted = 0;
    for (let p = 0; p < 32 * 32; p++)
      if (img.data[p * 3] || img.data[p * 3 + 1] || img.data[p * 3 + 2]) painted++;
    expect(painted).toBe(64 + maskCount('circle', 13));
  });

  it('rejects boxes outside the image', () => {
    const o = { shape: 'square', colour: 'red', size: 'large', x: 20, y: 0, extent: 13 } as const;
    expect(() => renderScene({ objects: [o] }, 32)).toThrow(RangeError);
  });
});

describe('placeScene', () => {
  const objects: ShapeObject[] = [];
  for (const shape of SHAPES) for (const size of SIZES) objects.push({ shape, colour: 'white', size });

  it('keeps boxes inside, apart, in caption order, and readable back from the pixels', () => {
    const rng = createRng(7);
    for (const imageSize of [24, 32, 48]) {
      const g = shapesGeometry(imageSize);
      for (const relation of RELATIONS) {
        for (const a of objects) {
          for (const b of objects) {
            for (let rep = 0; rep < (imageSize === 32 ? 12 : 2); rep++) {
              const scene: Scene = { objects: [a, { ...b, colour: 'green' }], relation };
              const placed = placeScene(scene, imageSize, rng);
              const [pa, pb] = placed.objects as [PlacedObject, PlacedObject];
              for (const p of [pa, pb]) {
                expect(p.x).toBeGreaterThanOrEqual(g.margin);
                expect(p.y).toBeGreaterThanOrEqual(g.margin);
                expect(p.x + p.extent).toBeLessThanOrEqual(imageSize - g.margin);
                expect(p.y + p.extent).toBeLessThanOrEqual(imageSize - g.margin);
              }
              const [along, across] = relation === 'left of' ? (['x', 'y'] as const) : (['y', 'x'] as const);
              // Separated along the axis by >= gap; boxes overlap across it (centres within half the larger box).
              expect(pb[along] - (pa[along] + pa.extent)).toBeGreaterThanOrEqual(g.gap);
              const dc = Math.abs(2 * pa[across] + pa.extent - 2 * pb[across] - pb.extent);
              expect(dc).toBeLessThanOrEqual(Math.max(pa.extent, pb.extent));
              const img = renderScene(placed, imageSize);
              const [ca, cb] = [centroid(img, pa), centroid(img, pb)];
              const k = relation === 'left of' ? 0 : 1;
              expect(ca[k]).toBeLessThan(cb[k]);
              expect(captionFromPixels(img)).toBe(captionOf(scene));
            }
          }
        }
      }
    }
  });

  it('places single objects anywhere inside the margin and is deterministic given the stream', () => {
    const scene: Scene = { objects: [{ shape: 'cross', colour: 'red', size: 'large' }] };
    const xs = new Set<number>();
    const rng = createRng(1);
    for (let k = 0; k < 400; k++) {
      const [o] = placeScene(scene, 32, rng).objects;
      expect(o.x).toBeGreaterThanOrEqual(1);
      expect(o.x + o.extent).toBeLessThanOrEqual(31);
      xs.add(o.x);
    }
    expect(xs.size).toBe(32 - 2 - 13 + 1); // every position occurs
    expect(placeScene(scene, 32, createRng(5))).toEqual(placeScene(scene, 32, createRng(5)));
  });
});

describe('addNoise', () => {
  it('moves every byte by at most the amplitude, clamped', () => {
    const scene: Scene = { objects: [{ shape: 'square', colour: 'red', size: 'large' }] };
    const clean = renderScene(placeScene(scene, 32, createRng(3)), 32);
    const noisy = { ...clean, data: clean.data.slice() };
    addNoise(noisy, 10, createRng(4));
    let changed = 0;
    for (let k = 0; k < clean.data.length; k++) {
      const d = (noisy.data[k] as number) - (clean.data[k] as number);
      expect(Math.abs(d)).toBeLessThanOrEqual(10);
      if (d !== 0) changed++;
    }
    expect(changed).toBeGreaterThan(clean.data.length / 3); // bytes at 0 clamp half of the time
  });
});
