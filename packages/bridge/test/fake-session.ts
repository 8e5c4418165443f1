import type { DecodingSession } from '../src/lm/types.js';

/** Logits of the next token of row `row` (its original input row) after `prefix` (generated tokens). */
export type LogitsTable = (row: number, prefix: readonly number[]) => ArrayLike<number>;

/**
 * A deterministic {@link DecodingSession} for host-level generation tests: each row remembers which
 * input row it came from and the tokens stepped so far; logits come from a table.
 */
export class FakeSession implements DecodingSession {
  private origin: number[];
  private prefixes: number[][];
  /** Number of `step` calls (model calls after the prefill). */
  steps = 0;
  disposed = false;

  constructor(
    batch: number,
    readonly vocabSize: number,
    private readonly table: LogitsTable,
  ) {
    this.origin = Array.from({ length: batch }, (_, i) => i);
    this.prefixes = this.origin.map(() => []);
  }

  get rows(): number {
    return this.origin.length;
  }

  private logits(): Float32Array {
    const out = new Float32Array(this.rows * this.vocabSize);
    this.origin.forEach((row, r) => {
      const l = this.table(row, this.prefixes[r] as number[]);
      if (l.length !== this.vocabSize) throw new Error(`table gave ${l.length} logits`);
      out.set(Array.from(l), r * this.vocabSize);
    });
    return out;
  }

  async prefill(): Promise<Float32Array> {
    return this.logits();
  }

  async step(tokens: Int32Array): Promise<Float32Array> {
    if (tokens.length !== this.rows) throw new Error('one token per row');
    this.steps++;
    this.prefixes = this.prefixes.map((p, r) => [...p, tokens[r] as number]);
    return this.logits();
  }

  reorder(index: Int32Array): void {
    this.origin = Array.from(index, (i) => this.origin[i] as number);
    this.prefixes = Array.from(index, (i) => [...(this.prefixes[i] as number[])]);
  }

  dispose(): void {
    this.disposed = true;
  }
}

/** Logits `log(p)` for a probability row (p = 0 -> -1e4, i.e. never chosen). */
export function logits(...p: number[]): number[] {
  return p.map((x) => (x > 0 ? Math.log(x) : -1e4));
}

/** A seeded pseudo-random logits table: row and prefix -> V values in [-3, 3). */
export function randomTable(vocabSize: number, seed: number): LogitsTable {
  return (row, prefix) => {
    let h = (seed * 2654435761 + row * 97 + 1) >>> 0;
    for (const t of prefix) h = (Math.imul(h ^ (t + 7), 2246822519) + 3266489917) >>> 0;
    const out: number[] = [];
    for (let i = 0; i < vocabSize; i++) {
      h = (Math.imul(h ^ (h >>> 15), 2246822519) + i * 374761393) >>> 0;
      h ^= h >>> 13;
      out.push(((h >>> 0) / 2 ** 32) * 6 - 3);
    }
    return out;
  };
}
