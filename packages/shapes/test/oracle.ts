/**
 * Reads a caption back from pixels alone (test helper): 4-connected components of non-background
 * pixels, colour by exact RGB, size by box side, shape by which mask matches, relation by which axis
 * separates the two components. Used to check that every caption is determined by its image.
 */
import {
  COLOUR_RGB,
  COLOURS,
  type ColourName,
  insideShape,
  SHAPES,
  type ShapeImage,
  type ShapeName,
  shapesGeometry,
} from '../src/index.js';

export interface Component {
  readonly pixels: number[];
  readonly minX: number;
  readonly maxX: number;
  readonly minY: number;
  readonly maxY: number;
  readonly rgb: readonly [number, number, number];
}

export function components(image: ShapeImage): Component[] {
  const { width: W, height: H, data } = image;
  const seen = new Uint8Array(W * H);
  const isFg = (p: number) =>
    (data[p * 3] as number) | (data[p * 3 + 1] as number) | (data[p * 3 + 2] as number);
  const out: Component[] = [];
  for (let start = 0; start < W * H; start++) {
    if (seen[start] || !isFg(start)) continue;
    const pixels: number[] = [];
    const stack = [start];
    seen[start] = 1;
    let [minX, maxX, minY, maxY] = [W, -1, H, -1];
    while (stack.length) {
      const p = stack.pop() as number;
      pixels.push(p);
      const x = p % W;
      const y = (p - x) / W;
      minX = Math.min(minX, x);
      maxX = Math.max(maxX, x);
      minY = Math.min(minY, y);
      maxY = Math.max(maxY, y);
      for (const [nx, ny] of [
        [x - 1, y],
        [x + 1, y],
        [x, y - 1],
        [x, y + 1],
      ] as const) {
        const q = ny * W + nx;
        if (nx >= 0 && ny >= 0 && nx < W && ny < H && !seen[q] && isFg(q)) {
          seen[q] = 1;
          stack.push(q);
        }
      }
    }
    const rgb = [data[start * 3], data[start * 3 + 1], data[start * 3 + 2]] as [number, number, number];
    out.push({ pixels, minX, maxX, minY, maxY, rgb });
  }
  return out;
}

function describe(c: Component, image: ShapeImage): string {
  const g = shapesGeometry(image.width);
  const colour = COLOURS.find((n) => COLOUR_RGB[n].every((v, k) => v === c.rgb[k])) as ColourName | undefined;
  if (!colour) throw new Error(`unknown colour ${c.rgb}`);
  for (const p of c.pixels) {
    if (!COLOUR_RGB[colour].every((v, k) => v === image.data[p * 3 + k])) throw new Error('mixed colours');
  }
  const extent = c.maxX - c.minX + 1; // every shape reaches both sides of its box and its bottom row
  const size = extent === g.small ? 'small' : extent === g.large ? 'large' : undefined;
  if (!size) throw new Error(`unexpected extent ${extent}`);
  const x0 = c.minX;
  const y0 = c.maxY - extent + 1;
  const set = new Set(c.pixels);
  const matches = SHAPES.filter((shape: ShapeName) => {
    let n = 0;
    for (let j = 0; j < extent; j++) {
      for (let i = 0; i < extent; i++) {
        if (!insideShape(shape, i, j, extent)) continue;
        if (!set.has((y0 + j) * image.width + x0 + i)) return false;
        n++;
      }
    }
    return n === set.size;
  });
  if (matches.length !== 1) throw new Error(`shape ambiguous: ${matches}`);
  return `a ${size} ${colour} ${matches[0]}`;
}

/** The caption read from the pixels; throws when the image is not a clean shapes image. */
export function captionFromPixels(image: ShapeImage): string {
  const cs = components(image);
  if (cs.length === 1) return describe(cs[0] as Component, image);
  if (cs.length !== 2) throw new Error(`${cs.length} components`);
  let [a, b] = cs as [Component, Component];
  const xSeparated = a.maxX < b.minX || b.maxX < a.minX;
  const ySeparated = a.maxY < b.minY || b.maxY < a.minY;
  if (xSeparated === ySeparated) throw new Error('relation ambiguous');
  if (xSeparated ? a.minX > b.minX : a.minY > b.minY) [a, b] = [b, a];
  return `${describe(a, image)} ${xSeparated ? 'left of' : 'above'} ${describe(b, image)}`;
}
