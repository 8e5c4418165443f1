import { QfError } from '@qf/io';

/**
 * Codes of {@link LossError}:
 * - `LOSS_INPUT`: a stage-1 batch, negative index or loss input is missing or malformed;
 * - `LOSS_NO_NEGATIVE`: hard-negative mining found a row with no negative to draw (a batch of one,
 *   or every sample sharing one image id);
 * - `LOSS_MODEL`: the model lacks a part the loss needs (text path, retrieval heads).
 */
export type LossErrorCode = 'LOSS_INPUT' | 'LOSS_NO_NEGATIVE' | 'LOSS_MODEL';

/** A typed error of `@qf/losses` (a `QfError`, so callers can branch on `code`). */
export class LossError extends QfError {
  declare readonly code: LossErrorCode;
  // biome-ignore lint/complexity/noUselessConstructor: narrows `code` to LossErrorCode
  constructor(code: LossErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
  }
}
