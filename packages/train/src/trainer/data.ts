import { Rng } from '@qf/core';
import { TrainError } from '../errors.js';
import type { DataSource, DataState } from './types.js';

/**
 * The generator of step `step` for run seed `seed`: a mulberry32 `Rng` seeded by a splitmix32-style
 * hash of both. Deriving one generator per step makes the random state of a run its seed alone, so a
 * resumed run draws exactly what an uninterrupted one would.
 */
export function stepRng(seed: number, step: number): Rng {
  let h = (seed >>> 0) ^ Math.imul(step + 1, 0x9e3779b9);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return new Rng((h ^ (h >>> 16)) >>> 0);
}

type AnyIterator<B> = AsyncIterator<B> | Iterator<B>;

function isIterable<B>(x: unknown): x is Iterable<B> {
  return typeof (x as Iterable<B>)?.[Symbol.iterator] === 'function';
}

function isAsyncIterable<B>(x: unknown): x is AsyncIterable<B> {
  return typeof (x as AsyncIterable<B>)?.[Symbol.asyncIterator] === 'function';
}

function iteratorOf<B>(it: AsyncIterable<B> | Iterable<B>): AnyIterator<B> {
  return isAsyncIterable<B>(it) ? it[Symbol.asyncIterator]() : (it as Iterable<B>)[Symbol.iterator]();
}

/** Reads batches from a {@link DataSource} in order and keeps the position for checkpoints. */
export class BatchReader<B> {
  private iterator: AnyIterator<B> | undefined;
  private used: number;
  readonly kind: DataState['kind'];

  constructor(
    private readonly source: DataSource<B>,
    consumed = 0,
  ) {
    this.used = consumed;
    if (typeof source === 'function') this.kind = 'function';
    else if (typeof (source as { iterate?: unknown }).iterate === 'function') this.kind = 'iterate';
    else if (isIterable(source) || isAsyncIterable(source)) this.kind = 'iterable';
    else
      throw new TrainError(
        'TRAIN_OPTIONS',
        'data must be a function of the step, { iterate }, or an iterable',
      );
  }

  get state(): DataState {
    return { kind: this.kind, consumed: this.used };
  }

  /** Moves to position `consumed` (resume); an iterable is re-read from its start on the next batch. */
  seek(consumed: number): void {
    this.used = consumed;
    void this.iterator?.return?.();
    this.iterator = undefined;
  }

  /** The next batch. @throws TrainError `TRAIN_DATA` when the source ends */
  async next(): Promise<B> {
    const index = this.used;
    let batch: B | undefined;
    if (typeof this.source === 'function') {
      batch = await this.source(index);
    } else {
      if (!this.iterator) {
        if (this.kind === 'iterate') {
          this.iterator = iteratorOf((this.source as { iterate: (s: number) => Iterable<B> }).iterate(index));
        } else {
          this.iterator = iteratorOf(this.source as Iterable<B>);
          for (let i = 0; i < index; i++)
            if ((await this.iterator.next()).done)
              throw ended(i, `re-reading the ${index} batches already used`);
        }
      }
      const r = await this.iterator.next();
      if (r.done) throw ended(index, 'training needs more batches');
      batch = r.value;
    }
    if (batch === undefined || batch === null)
      throw new TrainError('TRAIN_DATA', `data source returned no batch for step ${index}`);
    this.used = index + 1;
    return batch;
  }

  close(): void {
    void this.iterator?.return?.();
    this.iterator = undefined;
  }
}

function ended(at: number, why: string): TrainError {
  return new TrainError('TRAIN_DATA', `data source ended after ${at} batches (${why})`);
}
