/**
 * The seeded train / validation / test splits.
 *
 * Split rule (all draws from mulberry32 streams derived from `seed`, see {@link deriveSeed}):
 * 1. Each split has `round(count * singleFraction)` one-object examples (capped at the 48 one-object
 *    descriptions for validation and test) and two-object examples for the rest.
 * 2. Validation and test hold *distinct* descriptions (so distinct captions: image-to-text retrieval
 *    over the split is well posed). Their one-object descriptions are a shuffled prefix of the 48.
 * 3. `heldOut: true` (default): the 4608 two-object descriptions are shuffled once (stream 1); test
 *    takes the first ones, validation the next, and train draws only from the rest, so no two-object
 *    test or validation caption occurs in train. The held-out set is a uniform random subset, not a
 *    systematic hole: every object, in every slot and relation, stays abundant in train; only the
 *    exact combination is new. One-object descriptions are shared by all splits.
 *    `heldOut: false`: each split draws its two-object descriptions from all 4608.
 * 4. Train cycles through its (reshuffled) pools, so descriptions repeat as evenly as possible, and is
 *    then shuffled. Every example gets its own positions (and noise) from its split's stream.
 * Test uses stream 2, validation 3, train 4: the test split depends only on seed, imageSize, noise,
 * singleFraction and counts.test; validation also on counts.test.
 */
import { addNoise, placeScene, renderScene, type ShapeImage, shapesGeometry } from './render.js';
import { createRng, deriveSeed, type Rng, shuffleInPlace } from './rng.js';
import {
  captionOf,
  OBJECT_COUNT,
  PAIR_COUNT,
  type PlacedObject,
  type Relation,
  sceneFromId,
} from './scene.js';
import { CAPTION_WORDS } from './vocabulary.js';

export interface ShapesCounts {
  readonly train: number;
  readonly validation: number;
  readonly test: number;
}

export interface GenerateShapesOptions {
  /** Any integer (used as a uint32). */
  readonly seed: number;
  /** Image side in pixels, 24..1024. Default 32. */
  readonly imageSize?: number;
  /** Examples per split. Default { train: 4000, validation: 200, test: 200 }. */
  readonly counts?: Partial<ShapesCounts>;
  /** Share of one-object examples in each split, in [0, 1]. Default 0.2. */
  readonly singleFraction?: number;
  /** Keep two-object validation/test descriptions out of train. Default true. */
  readonly heldOut?: boolean;
  /** Uniform per-byte noise amplitude, integer 0..64. Default 0 (clean images). */
  readonly noise?: number;
}

export interface ShapeExample {
  readonly image: ShapeImage;
  readonly caption: string;
  /** The objects in caption order, with their pixel boxes. */
  readonly objects: readonly PlacedObject[];
  /** The relation of two-object scenes; undefined for one object. */
  readonly relation: Relation | undefined;
  /** The description's id ({@link sceneIdOf}); equal ids <=> equal captions. */
  readonly sceneId: number;
}

export interface ShapesDataset {
  readonly train: ShapeExample[];
  readonly validation: ShapeExample[];
  readonly test: ShapeExample[];
  /** The caption words ({@link CAPTION_WORDS}); see `shapesVocabulary()` for token lists. */
  readonly vocabulary: string[];
  /** The options with defaults filled in. */
  readonly options: Required<Omit<GenerateShapesOptions, 'counts'>> & { readonly counts: ShapesCounts };
}

export const DEFAULT_COUNTS: ShapesCounts = { train: 4000, validation: 200, test: 200 };

const STREAM = { pairs: 1, test: 2, validation: 3, train: 4 } as const;

const range = (start: number, n: number): number[] => Array.from({ length: n }, (_, k) => start + k);

function checkCount(name: string, n: number): number {
  if (!Number.isInteger(n) || n < 0)
    throw new RangeError(`counts.${name} must be a non-negative integer, got ${n}`);
  return n;
}

function example(id: number, imageSize: number, noise: number, rng: Rng): ShapeExample {
  const scene = sceneFromId(id);
  const placed = placeScene(scene, imageSize, rng);
  const image = renderScene(placed, imageSize);
  addNoise(image, noise, rng);
  return {
    image,
    caption: captionOf(scene),
    objects: placed.objects,
    relation: placed.relation,
    sceneId: id,
  };
}

/** `n` ids cycling through `pool`, reshuffled at every pass. */
function cycle(pool: readonly number[], n: number, rng: Rng): number[] {
  if (pool.length === 0 && n > 0) throw new RangeError('cycle: empty pool');
  const out: number[] = [];
  while (out.length < n) out.push(...shuffleInPlace([...pool], rng).slice(0, n - out.length));
  return out;
}

/** Generates the three splits; see the module comment for the exact rule. */
export function generateShapes(options: GenerateShapesOptions): ShapesDataset {
  const { seed } = options;
  if (!Number.isInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
  const imageSize = options.imageSize ?? 32;
  shapesGeometry(imageSize);
  const singleFraction = options.singleFraction ?? 0.2;
  if (!(singleFraction >= 0 && singleFraction <= 1)) {
    throw new RangeError(`singleFraction must be in [0, 1], got ${singleFraction}`);
  }
  const heldOut = options.heldOut ?? true;
  const noise = options.noise ?? 0;
  if (!Number.isInteger(noise) || noise < 0 || noise > 64) {
    throw new RangeError(`noise must be an integer in [0, 64], got ${noise}`);
  }
  const c = { ...DEFAULT_COUNTS, ...options.counts };
  const counts: ShapesCounts = {
    train: checkCount('train', c.train),
    validation: checkCount('validation', c.validation),
    test: checkCount('test', c.test),
  };

  const singlesOf = (n: number, cap: boolean): number =>
    Math.min(Math.round(n * singleFraction), cap ? OBJECT_COUNT : n);
  const testSingles = singlesOf(counts.test, true);
  const valSingles = singlesOf(counts.validation, true);
  const testPairs = counts.test - testSingles;
  const valPairs = counts.validation - valSingles;
  const trainSingles = singlesOf(counts.train, false);
  const trainPairs = counts.train - trainSingles;

  const singleIds = range(0, OBJECT_COUNT);
  const pairIds = range(OBJECT_COUNT, PAIR_COUNT);
  const rngTest = createRng(deriveSeed(seed, STREAM.test));
  const rngVal = createRng(deriveSeed(seed, STREAM.validation));
  const rngTrain = createRng(deriveSeed(seed, STREAM.train));

  let testPairIds: number[];
  let valPairIds: number[];
  let trainPool: number[];
  if (heldOut) {
    const needed = testPairs + valPairs + (trainPairs > 0 ? 1 : 0);
    if (needed > PAIR_COUNT) {
      throw new RangeError(
        `heldOut: validation + test need ${testPairs + valPairs} of ${PAIR_COUNT} two-object descriptions and train needs some left`,
      );
    }
    const shuffled = shuffleInPlace([...pairIds], createRng(deriveSeed(seed, STREAM.pairs)));
    testPairIds = shuffled.slice(0, testPairs);
    valPairIds = shuffled.slice(testPairs, testPairs + valPairs);
    trainPool = shuffled.slice(testPairs + valPairs);
  } else {
    if (Math.max(testPairs, valPairs) > PAIR_COUNT) {
      throw new RangeError(
        `validation and test can hold at most ${PAIR_COUNT + OBJECT_COUNT} distinct descriptions`,
      );
    }
    testPairIds = shuffleInPlace([...pairIds], rngTest).slice(0, testPairs);
    valPairIds = shuffleInPlace([...pairIds], rngVal).slice(0, valPairs);
    trainPool = pairIds;
  }

  const build = (ids: number[], rng: Rng): ShapeExample[] =>
    shuffleInPlace(ids, rng).map((id) => example(id, imageSize, noise, rng));
  const test = build(
    [...shuffleInPlace([...singleIds], rngTest).slice(0, testSingles), ...testPairIds],
    rngTest,
  );
  const validation = build(
    [...shuffleInPlace([...singleIds], rngVal).slice(0, valSingles), ...valPairIds],
    rngVal,
  );
  const train = build(
    [...cycle(singleIds, trainSingles, rngTrain), ...cycle(trainPool, trainPairs, rngTrain)],
    rngTrain,
  );

  return {
    train,
    validation,
    test,
    vocabulary: [...CAPTION_WORDS],
    options: { seed, imageSize, counts, singleFraction, heldOut, noise },
  };
}
