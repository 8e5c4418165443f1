import { QfError } from '@qf/io';

/**
 * Codes of errors raised by the CLI itself: files that are missing, options that are wrong, an optional
 * runtime (onnxruntime-node) that cannot be loaded.
 */
export type CliErrorCode =
  | 'CLI_NOT_FOUND'
  | 'CLI_NOT_A_FILE'
  | 'CLI_NOT_A_DIRECTORY'
  | 'CLI_BAD_OPTION'
  | 'CLI_MISSING_DEPENDENCY';

/** An error the CLI raises itself; like every qformer-ts error it carries a stable `code`. */
export class CliError extends QfError {
  // biome-ignore lint/complexity/noUselessConstructor: narrows `code` to the CLI's codes.
  constructor(code: CliErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
  }
}

/**
 * The one-line report of an error for stderr: `error [CODE]: message` for typed qformer-ts errors
 * (the message names the tensor or field with expected vs actual), `error: message` otherwise. With
 * `QF_DEBUG` set in the environment the stack follows.
 */
export function describeError(err: unknown): string {
  const e = err instanceof Error ? err : new Error(String(err));
  const head = e instanceof QfError ? `error [${e.code}]: ${e.message}` : `error: ${e.message}`;
  return process.env.QF_DEBUG && e.stack ? `${head}\n${e.stack}` : head;
}
