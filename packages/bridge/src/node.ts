/**
 * @qf/bridge/node — Node-only helpers: read tokenizers (and, through `@qf/io/node`, checkpoints)
 * from a model directory. Re-exports the browser-safe API of `@qf/bridge`.
 * @packageDocumentation
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Backend } from '@qf/core';
import { CheckpointError, SourceError } from '@qf/io';
import { openCheckpointDir } from '@qf/io/node';
import { Blip2Error } from './blip2/errors.js';
import { blip2Config } from './blip2/config.js';
import { type Blip2LoadOptions, checkFullModel } from './blip2/load.js';
import { Blip2Model } from './blip2/model.js';
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

/** Loads a tokenizer that may be absent: `undefined` when its `tokenizer.json` does not exist. */
async function optionalTokenizer(dir: string, subfolder?: string): Promise<TextTokenizer | undefined> {
  try {
    return await loadTokenizer(dir, subfolder);
  } catch (e) {
    if (e instanceof SourceError && e.code === 'SOURCE_NOT_FOUND') return undefined;
    throw e;
  }
}

/** Options of {@link loadBlip2FromDir}. */
export interface LoadBlip2DirOptions extends Blip2LoadOptions {
  /**
   * Fail (Blip2Error `BLIP2_TOKENIZER_MISSING`, before any weight is read) when the directory has no
   * `tokenizer.json`, or for InstructBLIP no `qformer_tokenizer/tokenizer.json`
   * (`BLIP2_QFORMER_TOKENIZER_MISSING`). Default false: they are optional.
   */
  readonly requireTokenizer?: boolean | undefined;
}

/** What {@link loadBlip2FromDir} returns. */
export interface LoadedBlip2Dir<T> {
  readonly model: Blip2Model<T>;
  /** The LM tokenizer (`tokenizer.json` + `tokenizer_config.json`), when the directory has one. */
  readonly tokenizer?: TextTokenizer | undefined;
  /** InstructBLIP: the Q-Former tokenizer (`qformer_tokenizer/`), when present. */
  readonly qformerTokenizer?: TextTokenizer | undefined;
}

/**
 * Loads a whole BLIP-2 / InstructBLIP model from an HF model directory (config.json +
 * model.safetensors or shards; HF BLIP-2 or InstructBLIP names), reading only the tensors it needs,
 * plus its tokenizers when the directory has them (a directory without `tokenizer.json` loads; text
 * in or out then throws Blip2Error `BLIP2_TOKENIZER_MISSING`).
 * @throws CheckpointError for a directory without config or weights; ConfigError for a config that is
 *   not a whole BLIP-2 model; Blip2Error / TensorError as `Blip2Model.load`
 */
export async function loadBlip2FromDir<T>(
  backend: Backend<T>,
  dir: string,
  options: LoadBlip2DirOptions = {},
): Promise<LoadedBlip2Dir<T>> {
  const { config, checkpoint, dir: abs } = await openCheckpointDir(dir);
  try {
    const cfg = blip2Config(config); // a whole-model config, before anything else is read
    checkFullModel(checkpoint.names(), cfg);
    const tokenizer = await optionalTokenizer(abs);
    const instruct = cfg.modelType === 'instructblip';
    const qformerTokenizer = instruct ? await optionalTokenizer(abs, 'qformer_tokenizer') : undefined;
    if (options.requireTokenizer && !tokenizer)
      throw new Blip2Error(
        'BLIP2_TOKENIZER_MISSING',
        `${join(abs, 'tokenizer.json')}: the language model's tokenizer is missing`,
      );
    if (options.requireTokenizer && instruct && !qformerTokenizer)
      throw new Blip2Error(
        'BLIP2_QFORMER_TOKENIZER_MISSING',
        `${join(abs, 'qformer_tokenizer', 'tokenizer.json')}: InstructBLIP's Q-Former tokenizer is missing`,
      );
    const model = await Blip2Model.load(backend, checkpoint, cfg, options);
    return { model, tokenizer, qformerTokenizer };
  } finally {
    await checkpoint.close();
  }
}
