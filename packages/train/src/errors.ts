import { QfError } from '@qf/io';

/**
 * Codes of {@link TrainError}:
 * - `TRAIN_OPTIONS`: an optimizer, schedule or trainer option is out of range or inconsistent;
 * - `TRAIN_STATE`: optimizer or trainer state does not fit the model (a missing or extra moment, a
 *   shape that differs, a state from another kind of run);
 * - `TRAIN_DATA`: the data source ended early or returned a malformed batch;
 * - `TRAIN_CHECKPOINT`: a training checkpoint directory is missing, incomplete or unreadable;
 * - `TRAIN_NONFINITE`: the loss became NaN or infinite (training stops instead of corrupting weights).
 */
export type TrainErrorCode =
  | 'TRAIN_OPTIONS'
  | 'TRAIN_STATE'
  | 'TRAIN_DATA'
  | 'TRAIN_CHECKPOINT'
  | 'TRAIN_NONFINITE';

/** A typed error of `@qf/train` (a `QfError`, so callers can branch on `code`). */
export class TrainError extends QfError {
  declare readonly code: TrainErrorCode;
  // biome-ignore lint/complexity/noUselessConstructor: narrows `code` to TrainErrorCode
  constructor(code: TrainErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
  }
}

/** Throws `TRAIN_OPTIONS` unless `value` is a finite number in [min, max]. */
export function checkNumber(
  name: string,
  value: number,
  min: number,
  max = Number.POSITIVE_INFINITY,
): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max)
    throw new TrainError(
      'TRAIN_OPTIONS',
      `${name} must be a finite number in [${min}, ${max}], got ${value}`,
    );
  return value;
}

/** Throws `TRAIN_OPTIONS` unless `value` is an integer >= min. */
export function checkInt(name: string, value: number, min: number): number {
  if (!Number.isInteger(value) || value < min)
    throw new TrainError('TRAIN_OPTIONS', `${name} must be an integer >= ${min}, got ${value}`);
  return value;
}
