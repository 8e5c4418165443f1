/**
 * @qf/bridge/node — Node-only helpers: read tokenizers (and, through `@qf/io/node`, checkpoints)
 * from a model directory. Re-exports the browser-safe API of `@qf/bridge`.
 * @packageDocumentation
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CheckpointError, SourceError } from '@qf/io';
import { TextTokenizer } from './tokenizer.js';

export * from './index.js';

async function readJson(path: string, required: boolean): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as { code?: unknown }).code === 'ENOENT' && !required) return undefined;
    const code = (e as { code?: unknown }).code === 'ENOENT' ? 'SOURCE_NOT_FOUND' : 'SOURCE_OPEN_FAILED';
    throw new SourceError(code, `${path}: cannot read (${(e as Error).message})`, { cause: e });
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CheckpointError('CHECKPOINT_BAD_CONFIG', `${path}: not valid JSON (${(e as Error).message})`);
  }
}

/**
 * Loads the tokenizer of an HF model directory: `tokenizer.json` and, when present,
 * `tokenizer_config.json`. `subfolder` picks e.g. InstructBLIP's `qformer_tokenizer`.
 * @throws SourceError `SOURCE_NOT_FOUND` naming the missing `tokenizer.json`.
 */
export async function loadTokenizer(dir: string, subfolder?: string): Promise<TextTokenizer> {
  const base = subfolder ? join(dir, subfolder) : dir;
  const tokenizer = await readJson(join(base, 'tokenizer.json'), true);
  const config = (await readJson(join(base, 'tokenizer_config.json'), false)) ?? {};
  return TextTokenizer.fromJson(tokenizer, config);
}
