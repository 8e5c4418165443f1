/**
 * Typed errors shared by every qformer-ts package. Each carries a stable `code` so callers can branch
 * on it, and a message that names the tensor/field with expected vs actual values.
 */

/** Base class of every error thrown on purpose by qformer-ts. */
export class QfError extends Error {
  /** Stable machine-readable code, e.g. `SAFETENSORS_HEADER_TOO_LARGE`. */
  readonly code: string;
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A safetensors file (or a sharded checkpoint index) is malformed. */
export class SafetensorsError extends QfError {}

/**
 * Reading bytes failed: a range outside the source, a short read, an HTTP error or a server without
 * range support, or a source that was already closed. Codes: `SOURCE_OUT_OF_RANGE`,
 * `SOURCE_SHORT_READ`, `SOURCE_HTTP`, `SOURCE_NO_RANGE_SUPPORT`, `SOURCE_NO_SIZE`, `SOURCE_CLOSED`,
 * `SOURCE_NOT_FOUND`, `SOURCE_OPEN_FAILED`.
 */
export class SourceError extends QfError {}

/**
 * A checkpoint directory is incomplete: no `config.json` (`CHECKPOINT_NO_CONFIG`), no weights
 * (`CHECKPOINT_NO_WEIGHTS`), or an unreadable config (`CHECKPOINT_BAD_CONFIG`).
 */
export class CheckpointError extends QfError {}

/** A config.json value is missing, of the wrong type or out of range. */
export class ConfigError extends QfError {
  /** The offending field, in HF (snake_case) spelling, e.g. `qformer_config.hidden_size`. */
  readonly field: string;
  constructor(field: string, message: string) {
    super('CONFIG_INVALID', `config field "${field}": ${message}`);
    this.field = field;
  }
}

/** A tensor is missing, unexpected, or has the wrong shape or dtype. */
export class TensorError extends QfError {
  /** The tensor's name (checkpoint name or input name). */
  readonly tensor: string;
  readonly expected: string | undefined;
  readonly actual: string | undefined;
  constructor(
    code: 'TENSOR_MISSING' | 'TENSOR_UNEXPECTED' | 'TENSOR_SHAPE' | 'TENSOR_DTYPE' | 'TENSOR_VALUE',
    tensor: string,
    message: string,
    expected?: string,
    actual?: string,
  ) {
    const detail =
      expected !== undefined || actual !== undefined ? ` (expected ${expected}, got ${actual})` : '';
    super(code, `tensor "${tensor}": ${message}${detail}`);
    this.tensor = tensor;
    this.expected = expected;
    this.actual = actual;
  }
}

/** Formats a shape like `[2, 17, 48]` for error messages. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
