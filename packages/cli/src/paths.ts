import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { CliError } from './errors.js';

async function statOf(path: string) {
  try {
    return await stat(path);
  } catch {
    return undefined;
  }
}

/** Resolves `path` and checks that it is an existing file; `what` names it in the error. */
export async function requireFile(path: string, what: string): Promise<string> {
  const abs = resolve(path);
  const s = await statOf(abs);
  if (s === undefined) throw new CliError('CLI_NOT_FOUND', `${what} not found: ${abs}`);
  if (!s.isFile()) throw new CliError('CLI_NOT_A_FILE', `${what} is not a file: ${abs}`);
  return abs;
}

/** Resolves `path` and checks that it is an existing directory; `what` names it in the error. */
export async function requireDirectory(path: string, what: string): Promise<string> {
  const abs = resolve(path);
  const s = await statOf(abs);
  if (s === undefined) throw new CliError('CLI_NOT_FOUND', `${what} not found: ${abs}`);
  if (!s.isDirectory()) throw new CliError('CLI_NOT_A_DIRECTORY', `${what} is not a directory: ${abs}`);
  return abs;
}

/** Whether `path` is a directory, a file, or absent. */
export async function pathKind(path: string): Promise<'directory' | 'file' | 'missing' | 'other'> {
  const s = await statOf(path);
  if (s === undefined) return 'missing';
  return s.isDirectory() ? 'directory' : s.isFile() ? 'file' : 'other';
}
