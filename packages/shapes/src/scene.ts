/**
 * Scene descriptions, their captions and their ids.
 *
 * Caption grammar (lowercase words separated by single spaces, no punctuation, no final period):
 *
 * ```
 * caption  := object | object relation object
 * object   := "a" size colour shape
 * size     := "small" | "large"
 * colour   := "red" | "green" | "blue" | "yellow" | "magenta" | "white"
 * shape    := "circle" | "square" | "triangle" | "cross"
 * relation := "left of" | "above"
 * ```
 *
 * Two-object captions name the objects in reading order: for side-by-side objects the left one first
 * ("X left of Y"), for stacked objects the top one first ("X above Y"). "right of" and "below" do not
 * exist because "Y right of X" would describe exactly the pixels of "X left of Y": with reading order
 * every image has exactly one caption.
 */

export const SHAPES = ['circle', 'square', 'triangle', 'cross'] as const;
export type ShapeName = (typeof SHAPES)[number];

/** Six corners of the RGB cube (pairwise distance >= 255, and >= 255 from the black background). */
export const COLOURS = ['red', 'green', 'blue', 'yellow', 'magenta', 'white'] as const;
export type ColourName = (typeof COLOURS)[number];

export const COLOUR_RGB: Readonly<Record<ColourName, readonly [number, number, number]>> = {
  red: [255, 0, 0],
  green: [0, 255, 0],
  blue: [0, 0, 255],
  yellow: [255, 255, 0],
  magenta: [255, 0, 255],
  white: [255, 255, 255],
};

/** The background colour (black). */
export const BACKGROUND_RGB: readonly [number, number, number] = [0, 0, 0];

export const SIZES = ['small', 'large'] as const;
export type SizeName = (typeof SIZES)[number];

/** "left of": side by side, first object on the left. "above": stacked, first object on top. */
export const RELATIONS = ['left of', 'above'] as const;
export type Relation = (typeof RELATIONS)[number];

/** One object's attributes (all visible in the image). */
export interface ShapeObject {
  readonly shape: ShapeName;
  readonly colour: ColourName;
  readonly size: SizeName;
}

/** An object placed in an image: its square box is `[x, x + extent) x [y, y + extent)` in pixels. */
export interface PlacedObject extends ShapeObject {
  readonly x: number;
  readonly y: number;
  readonly extent: number;
}

/** One object, or two in reading order with their relation. */
export type Scene<O extends ShapeObject = ShapeObject> =
  | { readonly objects: readonly [O]; readonly relation?: undefined }
  | { readonly objects: readonly [O, O]; readonly relation: Relation };

export type PlacedScene = Scene<PlacedObject>;

/** Number of distinct objects (shape x colour x size). */
export const OBJECT_COUNT = SHAPES.length * COLOURS.length * SIZES.length;
/** Number of distinct two-object descriptions (relation x first x second; identical twins allowed). */
export const PAIR_COUNT = RELATIONS.length * OBJECT_COUNT * OBJECT_COUNT;
/** Number of distinct scene descriptions = number of distinct captions. */
export const SCENE_COUNT = OBJECT_COUNT + PAIR_COUNT;

/** Index of an object in [0, OBJECT_COUNT). */
export function objectIndex(o: ShapeObject): number {
  const s = SHAPES.indexOf(o.shape);
  const c = COLOURS.indexOf(o.colour);
  const z = SIZES.indexOf(o.size);
  if (s < 0 || c < 0 || z < 0) throw new RangeError(`objectIndex: invalid object ${JSON.stringify(o)}`);
  return (s * COLOURS.length + c) * SIZES.length + z;
}

/** Inverse of {@link objectIndex}. */
export function objectFromIndex(index: number): ShapeObject {
  if (!Number.isInteger(index) || index < 0 || index >= OBJECT_COUNT) {
    throw new RangeError(`objectFromIndex: ${index} is not in [0, ${OBJECT_COUNT})`);
  }
  const size = SIZES[index % SIZES.length] as SizeName;
  const rest = Math.floor(index / SIZES.length);
  const colour = COLOURS[rest % COLOURS.length] as ColourName;
  const shape = SHAPES[Math.floor(rest / COLOURS.length)] as ShapeName;
  return { shape, colour, size };
}

/**
 * The scene id: `[0, OBJECT_COUNT)` for one object, then `OBJECT_COUNT + (relation * OBJECT_COUNT +
 * first) * OBJECT_COUNT + second` for two. It ignores positions: captions and ids are in bijection.
 */
export function sceneIdOf(scene: Scene<ShapeObject>): number {
  const [a, b] = scene.objects;
  if (b === undefined) return objectIndex(a);
  const r = RELATIONS.indexOf(scene.relation as Relation);
  if (r < 0) throw new RangeError(`sceneIdOf: invalid relation ${String(scene.relation)}`);
  return OBJECT_COUNT + (r * OBJECT_COUNT + objectIndex(a)) * OBJECT_COUNT + objectIndex(b);
}

/** Inverse of {@link sceneIdOf}. */
export function sceneFromId(id: number): Scene {
  if (!Number.isInteger(id) || id < 0 || id >= SCENE_COUNT) {
    throw new RangeError(`sceneFromId: ${id} is not in [0, ${SCENE_COUNT})`);
  }
  if (id < OBJECT_COUNT) return { objects: [objectFromIndex(id)] };
  const k = id - OBJECT_COUNT;
  const second = objectFromIndex(k % OBJECT_COUNT);
  const rest = Math.floor(k / OBJECT_COUNT);
  const first = objectFromIndex(rest % OBJECT_COUNT);
  const relation = RELATIONS[Math.floor(rest / OBJECT_COUNT)] as Relation;
  return { objects: [first, second], relation };
}

const phrase = (o: ShapeObject): string => `a ${o.size} ${o.colour} ${o.shape}`;

/** The caption of a scene, e.g. "a small red circle" or "a large blue square left of a small white cross". */
export function captionOf(scene: Scene<ShapeObject>): string {
  const [a, b] = scene.objects;
  return b === undefined ? phrase(a) : `${phrase(a)} ${scene.relation} ${phrase(b)}`;
}

/**
 * Parses a caption of the grammar back to its scene, or returns undefined when it is not one (e.g. a
 * model's malformed output). Tolerates surrounding/repeated whitespace and upper case; nothing else.
 */
export function parseCaption(caption: string): Scene | undefined {
  const words = caption.trim().toLowerCase().split(/\s+/);
  let i = 0;
  const object = (): ShapeObject | undefined => {
    if (words[i] !== 'a') return undefined;
    const size = SIZES.find((w) => w === words[i + 1]);
    const colour = COLOURS.find((w) => w === words[i + 2]);
    const shape = SHAPES.find((w) => w === words[i + 3]);
    if (!size || !colour || !shape) return undefined;
    i += 4;
    return { shape, colour, size };
  };
  const first = object();
  if (!first) return undefined;
  if (i === words.length) return { objects: [first] };
  let relation: Relation;
  if (words[i] === 'left' && words[i + 1] === 'of') {
    relation = 'left of';
    i += 2;
  } else if (words[i] === 'above') {
    relation = 'above';
    i += 1;
  } else {
    return undefined;
  }
  const second = object();
  if (!second || i !== words.length) return undefined;
  return { objects: [first, second], relation };
}
