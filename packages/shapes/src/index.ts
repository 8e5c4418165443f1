/**
 * @qf/shapes — a deterministic synthetic image-caption set ("a large blue square left of a small
 * white cross") for training and evaluating a miniature BLIP-2 anywhere, with no downloads.
 * Browser-safe: pure TypeScript, no dependencies.
 * @packageDocumentation
 */
export {
  DEFAULT_COUNTS,
  type GenerateShapesOptions,
  generateShapes,
  type ShapeExample,
  type ShapesCounts,
  type ShapesDataset,
} from './generate.js';
export { writePng, type PngImage } from './png.js';
export {
  addNoise,
  extentOf,
  insideShape,
  MAX_IMAGE_SIZE,
  MIN_IMAGE_SIZE,
  placeScene,
  renderScene,
  type ShapeImage,
  type ShapesGeometry,
  shapesGeometry,
} from './render.js';
export { createRng, deriveSeed, type Rng, shuffleInPlace } from './rng.js';
export {
  BACKGROUND_RGB,
  COLOUR_RGB,
  COLOURS,
  type ColourName,
  captionOf,
  OBJECT_COUNT,
  objectFromIndex,
  objectIndex,
  PAIR_COUNT,
  type PlacedObject,
  type PlacedScene,
  parseCaption,
  RELATIONS,
  type Relation,
  SCENE_COUNT,
  SHAPES,
  SIZES,
  type Scene,
  type ShapeName,
  type ShapeObject,
  type SizeName,
  sceneFromId,
  sceneIdOf,
} from './scene.js';
export { type ShapesStatistics, type SplitStatistics, shapesStatistics } from './stats.js';
export {
  CAPTION_WORDS,
  type LmVocabulary,
  type QFormerVocabulary,
  type ShapesVocabulary,
  shapesVocabulary,
} from './vocabulary.js';
