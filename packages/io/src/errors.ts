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

/**
 * A short, compact-JSON-like preview of any value for error messages, at most `max` characters
 * (longer ones end in `...`). Safe on anything a stranger's file can hold: it walks at most `max`
 * characters' worth of the value and a few levels deep, so a deeply nested or huge JSON value (or a
 * BigInt, a cycle, a symbol) never throws, overflows the stack or builds a large string.
 */
export function previewValue(v: unknown, max = 60): string {
  let out = '';
  const full = () => out.length > max;
  const walk = (x: unknown, depth: number): void => {
    if (full()) return;
    if (typeof x === 'string') {
      out += JSON.stringify(x.length > max ? x.slice(0, max + 1) : x);
    } else if (typeof x === 'number') {
      out += Number.isFinite(x) ? JSON.stringify(x) : String(x);
    } else if (typeof x === 'bigint') {
      out += `${x}n`;
    } else if (x === null || typeof x === 'boolean' || x === undefined) {
      out += String(x);
    } else if (typeof x !== 'object') {
      out += `<${typeof x}>`;
    } else if (depth >= 8) {
      out += Array.isArray(x) ? '[...]' : '{...}';
    } else if (Array.isArray(x)) {
      out += '[';
      for (let i = 0; i < x.length && !full(); i++) {
        if (i > 0) out += ',';
        walk(x[i], depth + 1);
      }
      out += ']';
    } else {
      out += '{';
      let first = true;
      for (const k in x) {
        if (full()) break;
        if (!Object.hasOwn(x, k)) continue;
        out += `${first ? '' : ','}${JSON.stringify(k.length > max ? k.slice(0, max + 1) : k)}:`;
        first = false;
        walk((x as Record<string, unknown>)[k], depth + 1);
      }
      out += '}';
    }
  };
  try {
    walk(v, 0);
  } catch {
    out += '<unprintable>'; // e.g. a throwing getter on a caller's object
  }
  return out.length > max ? `${out.slice(0, Math.max(0, max - 3))}...` : out;
}

/** Formats a shape like `[2, 17, 48]` for error messages. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
