/**
 * The auxiliary objective the image encoder is pre-trained on before it is frozen (BLIP-2 freezes an
 * encoder pre-trained elsewhere; here it is pre-trained in the recipe). Two supervised heads read
 * the tower's last hidden state:
 * - global: the class token predicts each slot of the scene description (object 1 and 2 in
 *   caption order: size, colour, shape; object count; relation);
 * - dense: each patch token predicts the colour, shape and size of the object covering most of its
 *   pixels (or background), and whether that object comes first or second in reading order.
 */
import { COLOURS, RELATIONS, SHAPES, SIZES, type ShapeExample, insideShape } from '@qf/shapes';
import { DemoError } from './errors.js';

/** Slots of the global head; ignored (-100) for a missing second object or relation. */
export const SLOTS = [
  { name: 'size1', classes: SIZES.length },
  { name: 'colour1', classes: COLOURS.length },
  { name: 'shape1', classes: SHAPES.length },
  { name: 'count', classes: 2 },
  { name: 'size2', classes: SIZES.length },
  { name: 'colour2', classes: COLOURS.length },
  { name: 'shape2', classes: SHAPES.length },
  { name: 'relation', classes: RELATIONS.length },
] as const;

/** Slots of the dense head: class 0 is background. */
export const PATCH_SLOTS = [
  { name: 'colour', classes: COLOURS.length + 1 },
  { name: 'shape', classes: SHAPES.length + 1 },
  { name: 'size', classes: SIZES.length + 1 },
  { name: 'order', classes: 3 },
] as const;

/** Logits per slot (the widest slot of both heads); narrower slots mask their extra logits. */
export const SLOT_WIDTH = Math.max(...SLOTS.map((s) => s.classes), ...PATCH_SLOTS.map((s) => s.classes));

/** Additive mask [slots, SLOT_WIDTH]: 0 on a slot's classes, -1e4 on the padding logits. */
export function slotMask(slots: readonly { readonly classes: number }[]): Float32Array {
  const m = new Float32Array(slots.length * SLOT_WIDTH);
  slots.forEach((s, i) => {
    m.fill(-1e4, i * SLOT_WIDTH + s.classes, (i + 1) * SLOT_WIDTH);
  });
  return m;
}

/** Global-head labels of one example. */
export function slotLabels(ex: ShapeExample): number[] {
  const [a, b] = ex.objects;
  if (!a) throw new DemoError('DEMO_DATA', 'an example without objects');
  const one = (o: typeof a) => [SIZES.indexOf(o.size), COLOURS.indexOf(o.colour), SHAPES.indexOf(o.shape)];
  const second = b ? one(b) : [-100, -100, -100];
  const rel = ex.relation ? RELATIONS.indexOf(ex.relation) : -100;
  return [...one(a), b ? 1 : 0, ...second, rel];
}

/** Dense-head labels of one example: [grid * grid, PATCH_SLOTS], patches in row-major order. */
export function patchLabels(ex: ShapeExample, patch: number, grid: number): Int32Array {
  const out = new Int32Array(grid * grid * PATCH_SLOTS.length);
  for (let gy = 0; gy < grid; gy++)
    for (let gx = 0; gx < grid; gx++) {
      let best = -1;
      let bestCount = 0;
      ex.objects.forEach((o, k) => {
        let count = 0;
        for (let y = gy * patch; y < (gy + 1) * patch; y++)
          for (let x = gx * patch; x < (gx + 1) * patch; x++) {
            const i = x - o.x;
            const j = y - o.y;
            if (i >= 0 && j >= 0 && i < o.extent && j < o.extent && insideShape(o.shape, i, j, o.extent))
              count++;
          }
        if (count > bestCount) {
          best = k;
          bestCount = count;
        }
      });
      const o = best >= 0 ? ex.objects[best] : undefined;
      const row = (gy * grid + gx) * PATCH_SLOTS.length;
      out[row] = o ? COLOURS.indexOf(o.colour) + 1 : 0;
      out[row + 1] = o ? SHAPES.indexOf(o.shape) + 1 : 0;
      out[row + 2] = o ? SIZES.indexOf(o.size) + 1 : 0;
      out[row + 3] = best + 1;
    }
  return out;
}
