import { CheckpointError } from '../errors.js';
import { SafetensorsFile } from '../safetensors/file.js';
import { type FetchLike, type UrlSourceOptions, urlSource } from '../sources/url.js';
import { ShardedCheckpoint } from './sharded.js';
import type { Checkpoint } from './types.js';

/** A checkpoint directory opened by {@link openCheckpointUrl} (or `openCheckpointDir` in Node). */
export interface OpenedCheckpoint {
  /** The parsed `config.json` (validate it with `parseModelConfig`). */
  readonly config: unknown;
  readonly checkpoint: Checkpoint;
}

async function fetchText(
  fetchFn: FetchLike,
  url: string,
  headers: Record<string, string>,
): Promise<string | undefined> {
  const res = await fetchFn(url, { method: 'GET', headers });
  if (!res.ok) {
    await res.body?.cancel().catch(() => undefined);
    return undefined;
  }
  return new TextDecoder().decode(await res.arrayBuffer());
}

function parseConfigText(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CheckpointError(
      'CHECKPOINT_BAD_CONFIG',
      `${where}: config.json is not valid JSON: ${(err as Error).message}`,
    );
  }
}

/**
 * Opens an HF model directory served over HTTP (e.g. `https://huggingface.co/<repo>/resolve/main`):
 * fetches `config.json`, then reads `model.safetensors`, or the shards of
 * `model.safetensors.index.json`, lazily with HTTP Range requests. Throws CheckpointError
 * `CHECKPOINT_NO_CONFIG` / `CHECKPOINT_NO_WEIGHTS` when a piece is missing.
 */
export async function openCheckpointUrl(
  baseUrl: string,
  options: Omit<UrlSourceOptions, 'size'> = {},
): Promise<OpenedCheckpoint & { readonly baseUrl: string }> {
  const fetchFn = options.fetch ?? (globalThis.fetch as unknown as FetchLike);
  const headers = options.headers ?? {};
  const base = baseUrl.replace(/\/+$/, '');
  const at = (file: string) => `${base}/${file}`;
  const configText = await fetchText(fetchFn, at('config.json'), headers);
  if (configText === undefined) throw new CheckpointError('CHECKPOINT_NO_CONFIG', `${base}: no config.json`);
  const config = parseConfigText(configText, base);
  const sourceOptions = { fetch: fetchFn, headers };
  const head = await fetchFn(at('model.safetensors'), { method: 'HEAD', headers });
  if (head.ok) {
    return {
      config,
      baseUrl: base,
      checkpoint: await SafetensorsFile.open(await urlSource(at('model.safetensors'), sourceOptions)),
    };
  }
  const indexText = await fetchText(fetchFn, at('model.safetensors.index.json'), headers);
  if (indexText === undefined) {
    throw new CheckpointError(
      'CHECKPOINT_NO_WEIGHTS',
      `${base}: neither model.safetensors nor model.safetensors.index.json is available`,
    );
  }
  const checkpoint = await ShardedCheckpoint.open(indexText, async (file) =>
    SafetensorsFile.open(await urlSource(at(file), sourceOptions)),
  );
  return { config, baseUrl: base, checkpoint };
}
