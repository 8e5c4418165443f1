import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { QfError } from '../src/index.js';

/** `../shared/golden` relative to the repository root. */
export const GOLDEN_DIR = fileURLToPath(new URL('../../../../shared/golden/', import.meta.url));
export const HAVE_GOLDEN = existsSync(GOLDEN_DIR);

/** Builds raw safetensors bytes from a header (object or literal JSON text) and a data section. */
export function rawSafetensors(header: unknown, data: Uint8Array | number = 0, lengthOverride?: bigint): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const body = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + json.length + body.length);
  new DataView(out.buffer).setBigUint64(0, lengthOverride ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(body, 8 + json.length);
  return out;
}

/** Expects `p` to reject with a QfError of `code`; returns the error. */
export async function rejectsWithCode(p: Promise<unknown>, code: string): Promise<QfError> {
  try {
    await p;
  } catch (err) {
    if (!(err instanceof QfError)) throw new Error(`expected QfError ${code}, got ${String(err)}`);
    if (err.code !== code) throw new Error(`expected code ${code}, got ${err.code}: ${err.message}`);
    return err;
  }
  throw new Error(`expected rejection with ${code}, but it resolved`);
}

/** Expects `fn` to throw a QfError of `code`; returns the error. */
export function throwsWithCode(fn: () => unknown, code: string): QfError {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof QfError)) throw new Error(`expected QfError ${code}, got ${String(err)}`);
    if (err.code !== code) throw new Error(`expected code ${code}, got ${err.code}: ${err.message}`);
    return err;
  }
  throw new Error(`expected a throw with ${code}`);
}

/** Runs `fn` with a fresh temp directory, removed afterwards. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'qf-io-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
