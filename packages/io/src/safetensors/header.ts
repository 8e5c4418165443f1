/**
 * Safetensors header parsing and validation, as strict as the reference Rust `safetensors` crate.
 *
 * Layout: 8-byte little-endian header length N, N bytes of UTF-8 JSON, then the data section. The JSON
 * maps tensor names to `{dtype, shape, data_offsets: [begin, end]}` (offsets relative to the data
 * section) plus an optional `__metadata__` string map. Tensors sorted by offset must tile the data
 * section exactly: no overlap, no gap, nothing after the last one.
 */
import { DTYPE_BYTES, DTYPES, type DType, isDType } from '../dtypes.js';
import { SafetensorsError, previewValue } from '../errors.js';

/** Largest accepted header, in bytes (the Rust crate's limit). */
export const MAX_HEADER_BYTES = 100_000_000;

/** Where a tensor lives in a safetensors file, and what it holds. */
export interface TensorInfo {
  /** Tensor name as stored in the file. */
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** `end - begin` = product(shape) x dtype size. */
  readonly byteLength: number;
  /** `[begin, end)` relative to the start of the data section, as in the header. */
  readonly dataOffsets: readonly [number, number];
}

/** A validated safetensors header. */
export interface SafetensorsHeader {
  /** The `__metadata__` map (empty when absent). */
  readonly metadata: Readonly<Record<string, string>>;
  /** Every tensor, sorted by data offset (file order). */
  readonly tensors: readonly TensorInfo[];
}

const METADATA_KEY = '__metadata__';

function fail(code: string, message: string): never {
  throw new SafetensorsError(code, message);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function show(v: unknown): string {
  return previewValue(v, 80);
}

/**
 * Reads the header length from the first 8 bytes of a file of `fileSize` bytes and checks it before
 * anything is allocated: at most {@link MAX_HEADER_BYTES} (`SAFETENSORS_HEADER_TOO_LARGE`) and inside
 * the file (`SAFETENSORS_HEADER_OUT_OF_BOUNDS`). A file under 8 bytes is `SAFETENSORS_TRUNCATED`.
 */
export function readHeaderLength(prefix: Uint8Array, fileSize: number): number {
  if (fileSize < 8 || prefix.length < 8) {
    fail('SAFETENSORS_TRUNCATED', `file is ${Math.min(fileSize, prefix.length)} bytes, expected at least 8`);
  }
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    fail('SAFETENSORS_HEADER_TOO_LARGE', `header length ${n} exceeds the limit of ${MAX_HEADER_BYTES} bytes`);
  }
  const len = Number(n);
  if (8 + len > fileSize) {
    fail(
      'SAFETENSORS_HEADER_OUT_OF_BOUNDS',
      `header of ${len} bytes ends past the end of the file (expected at most ${fileSize - 8}, got ${len})`,
    );
  }
  return len;
}

/** Decodes header bytes as strict UTF-8 (`SAFETENSORS_BAD_UTF8` otherwise). */
export function decodeHeaderText(bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return fail('SAFETENSORS_BAD_UTF8', 'header is not valid UTF-8');
  }
}

function parseMetadata(value: unknown): Record<string, string> {
  if (!isPlainObject(value)) {
    fail('SAFETENSORS_BAD_METADATA', `"${METADATA_KEY}": expected an object of strings, got ${show(value)}`);
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') {
      fail('SAFETENSORS_BAD_METADATA', `"${METADATA_KEY}.${k}": expected a string, got ${show(v)}`);
    }
    Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/**
 * Element count of a shape, or undefined when the running product passes 2^53 before a zero
 * dimension ends it (like the Rust crate's checked product): such a shape has no exact count, and
 * `numel` would give NaN for it (`Infinity * 0`).
 */
function elementCount(shape: readonly number[]): number | undefined {
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (n > Number.MAX_SAFE_INTEGER) return undefined;
  }
  return n;
}

function parseEntry(name: string, value: unknown, dataLength: number): TensorInfo {
  if (!isPlainObject(value)) {
    fail(
      'SAFETENSORS_BAD_ENTRY',
      `tensor "${name}": expected {dtype, shape, data_offsets}, got ${show(value)}`,
    );
  }
  const { dtype, shape, data_offsets: offsets } = value;
  if (!isDType(dtype)) {
    fail(
      'SAFETENSORS_UNKNOWN_DTYPE',
      `tensor "${name}": unsupported dtype (expected one of ${DTYPES.join(', ')}, got ${show(dtype)})`,
    );
  }
  if (
    !Array.isArray(shape) ||
    shape.some((d) => typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0)
  ) {
    fail(
      'SAFETENSORS_BAD_SHAPE',
      `tensor "${name}": shape must be an array of non-negative integers, got ${show(shape)}`,
    );
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    offsets.some((o) => typeof o !== 'number' || !Number.isSafeInteger(o) || o < 0) ||
    offsets[0] > offsets[1]
  ) {
    fail(
      'SAFETENSORS_BAD_OFFSETS',
      `tensor "${name}": data_offsets must be [begin, end] integers with 0 <= begin <= end, got ${show(offsets)}`,
    );
  }
  const begin = offsets[0] as number;
  const end = offsets[1] as number;
  if (end > dataLength) {
    fail(
      'SAFETENSORS_OFFSET_OUT_OF_RANGE',
      `tensor "${name}": data_offsets [${begin}, ${end}] end past the data section (expected end <= ${dataLength}, got ${end})`,
    );
  }
  const count = elementCount(shape as number[]);
  const expected = count === undefined ? undefined : count * DTYPE_BYTES[dtype];
  if (expected === undefined || expected !== end - begin) {
    fail(
      'SAFETENSORS_SIZE_MISMATCH',
      `tensor "${name}": ${dtype} ${show(shape)} needs ${expected ?? 'too many'} bytes, data_offsets span ${end - begin}`,
    );
  }
  return { name, dtype, shape: [...(shape as number[])], byteLength: end - begin, dataOffsets: [begin, end] };
}

function checkTiling(tensors: readonly TensorInfo[], dataLength: number): void {
  let cursor = 0;
  let prev: TensorInfo | undefined;
  for (const t of tensors) {
    const [begin, end] = t.dataOffsets;
    if (begin < cursor) {
      fail(
        'SAFETENSORS_OVERLAP',
        `tensor "${t.name}" [${begin}, ${end}] overlaps tensor "${prev?.name}" [${prev?.dataOffsets[0]}, ${cursor}]`,
      );
    }
    if (begin > cursor) {
      const after = prev === undefined ? 'the start of the data section' : `tensor "${prev.name}"`;
      fail(
        'SAFETENSORS_GAP',
        `tensor "${t.name}" starts at ${begin}, leaving ${begin - cursor} unused bytes after ${after} (expected begin ${cursor})`,
      );
    }
    cursor = end;
    prev = t;
  }
  if (cursor !== dataLength) {
    fail(
      'SAFETENSORS_TRAILING_BYTES',
      `data section is ${dataLength} bytes but the tensors cover ${cursor} (${dataLength - cursor} bytes after ${
        prev === undefined ? 'the header' : `tensor "${prev.name}"`
      } are unused)`,
    );
  }
}

/**
 * Parses and validates the header JSON of a file whose data section is `dataLength` bytes. Errors are
 * SafetensorsError with codes `SAFETENSORS_BAD_UTF8`, `SAFETENSORS_HEADER_NOT_OBJECT`,
 * `SAFETENSORS_BAD_JSON`, `SAFETENSORS_BAD_METADATA`, `SAFETENSORS_BAD_ENTRY`,
 * `SAFETENSORS_UNKNOWN_DTYPE`, `SAFETENSORS_BAD_SHAPE`, `SAFETENSORS_BAD_OFFSETS`,
 * `SAFETENSORS_OFFSET_OUT_OF_RANGE`, `SAFETENSORS_SIZE_MISMATCH`, `SAFETENSORS_OVERLAP`,
 * `SAFETENSORS_GAP` and `SAFETENSORS_TRAILING_BYTES`, each naming the tensor.
 */
export function parseSafetensorsHeader(header: string | Uint8Array, dataLength: number): SafetensorsHeader {
  const text = typeof header === 'string' ? header : decodeHeaderText(header);
  if (!text.startsWith('{')) {
    fail(
      'SAFETENSORS_HEADER_NOT_OBJECT',
      `header must be a JSON object starting with "{", got ${show(text.slice(0, 20))}`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    fail('SAFETENSORS_BAD_JSON', `header is not valid JSON: ${(err as Error).message}`);
  }
  if (!isPlainObject(json)) fail('SAFETENSORS_HEADER_NOT_OBJECT', 'header must be a JSON object');
  let metadata: Record<string, string> = {};
  const tensors: TensorInfo[] = [];
  for (const [name, value] of Object.entries(json)) {
    if (name === METADATA_KEY) metadata = parseMetadata(value);
    else tensors.push(parseEntry(name, value, dataLength));
  }
  tensors.sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]);
  checkTiling(tensors, dataLength);
  return { metadata, tensors };
}
