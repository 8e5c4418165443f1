/**
 * Typed field readers for HF config JSON. Every failure is a ConfigError naming the field in HF
 * spelling (with its section, e.g. `qformer_config.hidden_size`) and giving expected vs actual.
 */
import { ConfigError, previewValue } from '../errors.js';

/** Largest integer accepted for a size/count field (int32 range). */
export const MAX_CONFIG_INT = 2 ** 31 - 1;

/** Short printable form of a JSON value for error messages. */
export function showValue(v: unknown): string {
  return v === undefined ? 'nothing' : previewValue(v, 60);
}

/** True for a non-null, non-array object. */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Checks that `value` is a JSON object, else ConfigError naming `field` (or `(root)`). */
export function requireObject(value: unknown, field: string): Record<string, unknown> {
  if (!isPlainObject(value)) {
    throw new ConfigError(field || '(root)', `expected a JSON object, got ${showValue(value)}`);
  }
  return value;
}

/** Reads fields of one config section; `prefix` is the section's HF name (`''` at the root). */
export class FieldReader {
  readonly obj: Record<string, unknown>;
  readonly prefix: string;

  constructor(obj: Record<string, unknown>, prefix = '') {
    this.obj = obj;
    this.prefix = prefix;
  }

  /** The full HF name of `key` in this section. */
  path(key: string): string {
    return this.prefix ? `${this.prefix}.${key}` : key;
  }

  /** Throws a ConfigError for `key`. */
  fail(key: string, message: string): never {
    throw new ConfigError(this.path(key), message);
  }

  /**
   * Whether the section sets `key` (to anything, even null). A key holding `undefined` (possible in
   * a JS object, never in JSON) counts as absent, as `JSON.stringify` would drop it.
   */
  has(key: string): boolean {
    return Object.hasOwn(this.obj, key) && this.obj[key] !== undefined;
  }

  private raw(key: string): unknown {
    return this.has(key) ? this.obj[key] : undefined;
  }

  /** An integer in [min, MAX_CONFIG_INT]; `def` when absent. */
  int(key: string, def: number, min = 1): number {
    const v = this.raw(key);
    if (v === undefined) return def;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > MAX_CONFIG_INT) {
      const what =
        min === 1 ? 'a positive integer' : min === 0 ? 'a non-negative integer' : `an integer >= ${min}`;
      this.fail(key, `expected ${what}, got ${showValue(v)}`);
    }
    return v;
  }

  /** An integer >= 0 or null; `def` when absent. */
  intOrNull(key: string, def: number | null): number | null {
    if (this.raw(key) === null) return null;
    return this.has(key) ? this.int(key, 0, 0) : def;
  }

  /** A finite number in [min, max] (or (min, max] when `exclusiveMin`); `def` when absent. */
  number(key: string, def: number, min: number, max: number, exclusiveMin = false): number {
    const v = this.raw(key);
    if (v === undefined) return def;
    const ok = typeof v === 'number' && Number.isFinite(v) && (exclusiveMin ? v > min : v >= min) && v <= max;
    if (!ok) {
      const range =
        max === Number.POSITIVE_INFINITY
          ? exclusiveMin
            ? `> ${min}`
            : `>= ${min}`
          : `in ${exclusiveMin ? '(' : '['}${min}, ${max}]`;
      this.fail(key, `expected a number ${range}, got ${showValue(v)}`);
    }
    return v as number;
  }

  /** A boolean; `def` when absent. */
  bool(key: string, def: boolean): boolean {
    const v = this.raw(key);
    if (v === undefined) return def;
    if (typeof v !== 'boolean') this.fail(key, `expected true or false, got ${showValue(v)}`);
    return v;
  }

  /** A string; `def` when absent. */
  string(key: string, def: string): string {
    const v = this.raw(key);
    if (v === undefined) return def;
    if (typeof v !== 'string') this.fail(key, `expected a string, got ${showValue(v)}`);
    return v;
  }

  /** One of `allowed` (the supported values); `def` when absent. */
  oneOf<T extends string>(key: string, allowed: readonly T[], def: T): T {
    const v = this.raw(key);
    if (v === undefined) return def;
    if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
      this.fail(
        key,
        `expected ${allowed.map((a) => JSON.stringify(a)).join(' or ')} (supported), got ${showValue(v)}`,
      );
    }
    return v as T;
  }
}
