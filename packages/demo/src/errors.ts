import { QfError } from '@qf/io';

/**
 * Codes of {@link DemoError}:
 * - `DEMO_OPTIONS`: an option of the recipe is out of range (steps, sizes, seed, backend);
 * - `DEMO_DATA`: a caption or example the recipe cannot encode;
 * - `DEMO_BACKEND`: the backend cannot train (no `valueAndGrad`) or could not be opened;
 * - `DEMO_DIVERGED`: a training loss became NaN or infinite.
 */
export type DemoErrorCode = 'DEMO_OPTIONS' | 'DEMO_DATA' | 'DEMO_BACKEND' | 'DEMO_DIVERGED';

/** A typed error of `@qf/demo` (a `QfError`, so callers can branch on `code`). */
export class DemoError extends QfError {
  declare readonly code: DemoErrorCode;
  // biome-ignore lint/complexity/noUselessConstructor: narrows `code` to DemoErrorCode
  constructor(code: DemoErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
  }
}
