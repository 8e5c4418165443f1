/**
 * Placing scenes in an image and rasterising them: pure integer arithmetic, no canvas, no
 * anti-aliasing, so the bytes are identical on every platform.
 */
import type { Rng } from './rng.js';
import {
  BACKGROUND_RGB,
  COLOUR_RGB,
  type PlacedObject,
  type PlacedScene,
  type Scene,
  type ShapeName,
  type ShapeObject,
  type SizeName,
} from './scene.js';

/** An RGB uint8 image, HWC (row-major, 3 bytes per pixel). */
export interface ShapeImage {
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
  readonly channels: 3;
}

/** Pixel geometry of an image size. */
export interface ShapesGeometry {
  readonly imageSize: number;
  /** Side of a small object's box: floor(S / 4) (8 at 32). */
  readonly small: number;
  /** Side of a large object's box: floor(13 S / 32) (13 at 32). */
  readonly large: number;
  /** Minimum distance of a box from the image border (1). */
  readonly margin: number;
  /** Minimum empty pixels between two boxes along the relation's axis: max(2, floor(S / 16)). */
  readonly gap: number;
}

export const MIN_IMAGE_SIZE = 24;
export const MAX_IMAGE_SIZE = 1024;

/** The geometry for a square image of side `imageSize` (24..1024: from 24 on the four shapes are pairwise distinct even when small). */
export function shapesGeometry(imageSize: number): ShapesGeometry {
  if (!Number.isInteger(imageSize) || imageSize < MIN_IMAGE_SIZE || imageSize > MAX_IMAGE_SIZE) {
    throw new RangeError(
      `imageSize must be an integer in [${MIN_IMAGE_SIZE}, ${MAX_IMAGE_SIZE}], got ${imageSize}`,
    );
  }
  return {
    imageSize,
    small: Math.floor(imageSize / 4),
    large: Math.floor((imageSize * 13) / 32),
    margin: 1,
    gap: Math.max(2, Math.floor(imageSize / 16)),
  };
}

/** Box side of a size. */
export function extentOf(size: SizeName, geometry: ShapesGeometry): number {
  return size === 'small' ? geometry.small : geometry.large;
}

/**
 * Whether pixel (i, j) of a box of side `extent` belongs to `shape`. Pixel centres are taken in doubled
 * coordinates u = 2i + 1 - extent, v = 2j + 1 - extent (integers in (-extent, extent), v down), so the
 * tests are exact: circle u^2 + v^2 <= e^2; triangle (apex up) 2|u| <= v + e; cross (arms e/3 wide)
 * 3|u| <= e or 3|v| <= e; square everything.
 */
export function insideShape(shape: ShapeName, i: number, j: number, extent: number): boolean {
  const u = 2 * i + 1 - extent;
  const v = 2 * j + 1 - extent;
  switch (shape) {
    case 'square':
      return true;
    case 'circle':
      return u * u + v * v <= extent * extent;
    case 'triangle':
      return 2 * Math.abs(u) <= v + extent;
    case 'cross':
      return 3 * Math.abs(u) <= extent || 3 * Math.abs(v) <= extent;
  }
}

const place = (o: ShapeObject, x: number, y: number, extent: number): PlacedObject => ({
  shape: o.shape,
  colour: o.colour,
  size: o.size,
  x,
  y,
  extent,
});

/**
 * Random positions for a scene. One object: anywhere with `margin` to the border. Two objects along
 * the relation's axis (x for "left of", y for "above"): the first strictly before the second with at
 * least `gap` empty pixels between the boxes (so they never overlap and the first's centroid is
 * always before the second's); the free slack is split by two sorted uniform draws. Across the axis,
 * box centres differ by at most half the larger box, so the boxes overlap across the axis and the
 * scene cannot be read with the other relation.
 */
export function placeScene(scene: Scene, imageSize: number, rng: Rng): PlacedScene {
  const g = shapesGeometry(imageSize);
  const S = g.imageSize;
  const m = g.margin;
  const [a, b] = scene.objects;
  const ea = extentOf(a.size, g);
  if (b === undefined) {
    return { objects: [place(a, m + rng.int(S - 2 * m - ea + 1), m + rng.int(S - 2 * m - ea + 1), ea)] };
  }
  const eb = extentOf(b.size, g);
  // Along the axis.
  const slack = S - 2 * m - g.gap - ea - eb;
  if (slack < 0) throw new Error('placeScene: image too small for two objects'); // unreachable for S >= 16
  const p = rng.int(slack + 1);
  const q = rng.int(slack + 1);
  const alongA = m + Math.min(p, q);
  const alongB = m + ea + g.gap + Math.max(p, q);
  // Across the axis: one box (chosen at random) uniformly, the other within the centre bound.
  const maxE = Math.max(ea, eb);
  const anchorIsA = rng.int(2) === 0;
  const [e1, e2] = anchorIsA ? [ea, eb] : [eb, ea];
  const across1 = m + rng.int(S - 2 * m - e1 + 1);
  // |(2 across1 + e1) - (2 across2 + e2)| <= maxE, with across2 in [m, S - m - e2].
  const lo = Math.max(m, Math.ceil((2 * across1 + e1 - e2 - maxE) / 2));
  const hi = Math.min(S - m - e2, Math.floor((2 * across1 + e1 - e2 + maxE) / 2));
  const across2 = lo + rng.int(hi - lo + 1);
  const [acrossA, acrossB] = anchorIsA ? [across1, across2] : [across2, across1];
  if (scene.relation === 'left of') {
    return { objects: [place(a, alongA, acrossA, ea), place(b, alongB, acrossB, eb)], relation: 'left of' };
  }
  return { objects: [place(a, acrossA, alongA, ea), place(b, acrossB, alongB, eb)], relation: 'above' };
}

/** Rasterises a placed scene on the black background into a new `imageSize` x `imageSize` RGB image. */
export function renderScene(scene: PlacedScene, imageSize: number): ShapeImage {
  const S = shapesGeometry(imageSize).imageSize;
  const data = new Uint8Array(S * S * 3);
  if (BACKGROUND_RGB.some((c) => c !== 0)) {
    for (let p = 0; p < S * S; p++) data.set(BACKGROUND_RGB, p * 3);
  }
  for (const o of scene.objects) {
    if (o.x < 0 || o.y < 0 || o.x + o.extent > S || o.y + o.extent > S) {
      throw new RangeError(`renderScene: object box outside the ${S}x${S} image: ${JSON.stringify(o)}`);
    }
    const rgb = COLOUR_RGB[o.colour];
    for (let j = 0; j < o.extent; j++) {
      for (let i = 0; i < o.extent; i++) {
        if (insideShape(o.shape, i, j, o.extent)) data.set(rgb, ((o.y + j) * S + o.x + i) * 3);
      }
    }
  }
  return { data, width: S, height: S, channels: 3 };
}

/** Adds uniform integer noise in [-amplitude, amplitude] to every byte, clamped to [0, 255], in place. */
export function addNoise(image: ShapeImage, amplitude: number, rng: Rng): void {
  if (amplitude === 0) return;
  const span = 2 * amplitude + 1;
  const d = image.data;
  for (let k = 0; k < d.length; k++) {
    const v = (d[k] as number) + rng.int(span) - amplitude;
    d[k] = v < 0 ? 0 : v > 255 ? 255 : v;
  }
}
