/**
 * The package's only source of randomness: mulberry32, a 32-bit PRNG (Tommy Ettinger, public domain).
 * State is one uint32; every step uses `Math.imul`, `>>>` and `^` only, so the stream is bit-identical
 * on every JavaScript engine and platform. Period 2^32, which is plenty for a few thousand scenes.
 * `Math.random` is never used.
 */

/** A seeded random stream. */
export interface Rng {
  /** The next uint32 of the stream. */
  nextUint32(): number;
  /** A float in [0, 1): `nextUint32() / 2^32` (exact in a double). */
  next(): number;
  /** An integer in [0, n) for 1 <= n <= 2^21; exact (the product u32 * n fits a double's 53 bits). */
  int(n: number): number;
}

/** mulberry32 seeded with `seed >>> 0`. */
export function createRng(seed: number): Rng {
  let state = seed >>> 0;
  const nextUint32 = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  return {
    nextUint32,
    next: () => nextUint32() / 4294967296,
    int(n: number): number {
      if (!Number.isInteger(n) || n < 1 || n > 2 ** 21) throw new RangeError(`Rng.int: bad bound ${n}`);
      return Math.floor((nextUint32() * n) / 4294967296);
    },
  };
}

/** murmur3's 32-bit finaliser: a bijective avalanche mix of a uint32. */
function fmix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * An independent sub-seed for stream number `stream` of `seed` (so, e.g., the test split does not
 * change when the train count changes).
 */
export function deriveSeed(seed: number, stream: number): number {
  return fmix32((seed >>> 0) ^ fmix32((stream + 0x9e3779b9) >>> 0));
}

/** Fisher-Yates shuffle in place; returns `items`. */
export function shuffleInPlace<T>(items: T[], rng: Rng): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const tmp = items[i] as T;
    items[i] = items[j] as T;
    items[j] = tmp;
  }
  return items;
}
