// Opening a checkpoint directory: over HTTP (range requests through @qf/io's openCheckpointUrl) or
// from user-picked files (a directory via webkitdirectory, or several files). Weights are streamed
// once into a host-side cache with byte-level progress; the models of every backend are then
// created from that cache, so switching backends fetches nothing again.
import { TextTokenizer, wordLevelTokenizerFiles } from '@qf/bridge';
import {
  type Checkpoint,
  type FetchLike,
  type FetchResponseLike,
  type HostTensor,
  type ReadOptions,
  SafetensorsFile,
  ShardedCheckpoint,
  blobSource,
  openCheckpointUrl,
} from '@qf/io';
import { shapesVocabulary } from '@qf/shapes';

/** Bytes so far of the tensors being read, and the total. */
export type Progress = (loaded: number, total: number) => void;

/** A checkpoint opened and read into memory, with its tokenizers. */
export interface CheckpointBundle {
  /** Where it came from, in words. */
  readonly label: string;
  /** `config.json`, parsed JSON. */
  readonly config: unknown;
  /** Reads come from memory once {@link prefetch} has run. */
  readonly checkpoint: Checkpoint;
  /** The LM tokenizer (`tokenizer.json`), or the built-in shapes one where the vocabulary fits. */
  readonly tokenizer?: TextTokenizer | undefined;
  /** The Q-Former tokenizer (`qformer_tokenizer/`), or the built-in shapes one where it fits. */
  readonly qformerTokenizer?: TextTokenizer | undefined;
  /** Notes for the user (fallbacks taken). */
  readonly notes: string[];
}

/** A checkpoint whose reads are cached: each tensor is fetched once, as float32. */
class CachedCheckpoint implements Checkpoint {
  private readonly cache = new Map<string, Promise<HostTensor>>();
  constructor(private readonly inner: Checkpoint) {}
  names(): string[] {
    return this.inner.names();
  }
  info(name: string) {
    return this.inner.info(name);
  }
  read(name: string, _opts?: ReadOptions): Promise<HostTensor> {
    let t = this.cache.get(name);
    if (!t) {
      t = this.inner.read(name, { float32: true });
      this.cache.set(name, t);
    }
    return t;
  }
  async close(): Promise<void> {
    this.cache.clear();
    await this.inner.close();
  }
}

/** Reads every tensor once (in file order), reporting progress in bytes. */
export async function prefetch(checkpoint: Checkpoint, onProgress: Progress, bytesSeen: () => number) {
  const names = checkpoint.names();
  const total = names.reduce((n, name) => n + (checkpoint.info(name)?.byteLength ?? 0), 0);
  let done = 0;
  for (const name of names) {
    await checkpoint.read(name);
    done += checkpoint.info(name)?.byteLength ?? 0;
    onProgress(Math.max(done, Math.min(bytesSeen(), total)), total);
  }
  onProgress(total, total);
}

/**
 * A fetch that streams response bodies and counts their bytes (the progress bar moves while one
 * large tensor arrives, not only between tensors).
 */
function countingFetch(onBytes: (n: number) => void): FetchLike {
  return async (url, init) => {
    const res = await fetch(url, init);
    const counted: FetchResponseLike = {
      ok: res.ok,
      status: res.status,
      headers: res.headers,
      body: res.body,
      async arrayBuffer() {
        if (!res.body) return res.arrayBuffer();
        const reader = res.body.getReader();
        const chunks: Uint8Array[] = [];
        let n = 0;
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          chunks.push(value);
          n += value.length;
          onBytes(value.length);
        }
        const out = new Uint8Array(n);
        let at = 0;
        for (const c of chunks) {
          out.set(c, at);
          at += c.length;
        }
        return out.buffer;
      },
    };
    return counted;
  };
}

async function fetchJson(url: string): Promise<unknown | undefined> {
  const res = await fetch(url);
  if (!res.ok) return undefined;
  return res.json();
}

function vocabSize(config: unknown, section: 'qformer_config' | 'text_config'): number | undefined {
  const c = (config as Record<string, Record<string, unknown> | undefined>)[section];
  return typeof c?.['vocab_size'] === 'number' ? (c['vocab_size'] as number) : undefined;
}

/**
 * The tokenizers: the checkpoint's own files where present, else the built-in word-level shapes
 * vocabularies (`@qf/shapes`) when the config's vocabulary sizes are exactly theirs.
 */
function tokenizers(
  config: unknown,
  files: { lm?: [unknown, unknown]; qformer?: [unknown, unknown] },
  notes: string[],
): { tokenizer?: TextTokenizer; qformerTokenizer?: TextTokenizer } {
  const v = shapesVocabulary();
  const out: { tokenizer?: TextTokenizer; qformerTokenizer?: TextTokenizer } = {};
  if (files.lm) out.tokenizer = TextTokenizer.fromJson(files.lm[0], files.lm[1] ?? {});
  else if (vocabSize(config, 'text_config') === v.lm.tokens.length) {
    const f = wordLevelTokenizerFiles(v.lm.tokens, { pad: v.lm.pad, unk: v.lm.unk, bos: v.lm.bos });
    out.tokenizer = TextTokenizer.fromJson(f.tokenizer, f.config);
    notes.push('no tokenizer.json: using the built-in shapes LM vocabulary');
  }
  if (files.qformer) out.qformerTokenizer = TextTokenizer.fromJson(files.qformer[0], files.qformer[1] ?? {});
  else if (vocabSize(config, 'qformer_config') === v.qformer.tokens.length) {
    const q = v.qformer;
    const f = wordLevelTokenizerFiles(q.tokens, { pad: q.pad, unk: q.unk, bos: q.cls, eos: q.sep });
    out.qformerTokenizer = TextTokenizer.fromJson(f.tokenizer, f.config);
    notes.push('no qformer_tokenizer/: using the built-in shapes Q-Former vocabulary');
  }
  return out;
}

/** Opens an HF model directory served over HTTP and reads its weights with progress. */
export async function openUrl(baseUrl: string, onProgress: Progress): Promise<CheckpointBundle> {
  let seen = 0;
  const { config, checkpoint } = await openCheckpointUrl(baseUrl, {
    fetch: countingFetch((n) => {
      seen += n;
    }),
  });
  const base = baseUrl.replace(/\/+$/, '');
  const pair = async (dir: string): Promise<[unknown, unknown] | undefined> => {
    const tok = await fetchJson(`${base}/${dir}tokenizer.json`);
    return tok === undefined ? undefined : [tok, await fetchJson(`${base}/${dir}tokenizer_config.json`)];
  };
  const notes: string[] = [];
  const toks = tokenizers(config, { lm: await pair(''), qformer: await pair('qformer_tokenizer/') }, notes);
  const cached = new CachedCheckpoint(checkpoint);
  const start = seen;
  await prefetch(cached, onProgress, () => seen - start);
  return { label: base, config, checkpoint: cached, ...toks, notes };
}

/**
 * Opens a checkpoint from picked files: `config.json`, `model.safetensors` (or
 * `model.safetensors.index.json` + shards), optional `tokenizer.json` / `tokenizer_config.json` and
 * `qformer_tokenizer/...` (directory picks keep relative paths).
 */
export async function openFiles(files: readonly File[], onProgress: Progress): Promise<CheckpointBundle> {
  const byPath = new Map<string, File>();
  for (const f of files) {
    const rel = (f as File & { webkitRelativePath?: string }).webkitRelativePath || f.name;
    const parts = rel.split('/');
    byPath.set((parts.length > 1 ? parts.slice(1) : parts).join('/'), f);
  }
  const json = async (p: string) => {
    const f = byPath.get(p);
    return f ? JSON.parse(await f.text()) : undefined;
  };
  const config = await json('config.json');
  if (config === undefined) throw new Error('the picked files have no config.json');
  let seen = 0;
  const counted = (f: File) => {
    const src = blobSource(f);
    return {
      size: src.size,
      read: async (offset: number, length: number) => {
        const bytes = await src.read(offset, length);
        seen += bytes.length;
        return bytes;
      },
    };
  };
  let checkpoint: Checkpoint;
  const single = byPath.get('model.safetensors');
  if (single) checkpoint = await SafetensorsFile.open(counted(single));
  else {
    const index = await json('model.safetensors.index.json');
    if (index === undefined)
      throw new Error('the picked files have no model.safetensors or model.safetensors.index.json');
    checkpoint = await ShardedCheckpoint.open(index, async (name) => {
      const f = byPath.get(name);
      if (!f) throw new Error(`shard ${name} was not picked`);
      return SafetensorsFile.open(counted(f));
    });
  }
  const pair = async (dir: string): Promise<[unknown, unknown] | undefined> => {
    const tok = await json(`${dir}tokenizer.json`);
    return tok === undefined ? undefined : [tok, await json(`${dir}tokenizer_config.json`)];
  };
  const notes: string[] = [];
  const toks = tokenizers(config, { lm: await pair(''), qformer: await pair('qformer_tokenizer/') }, notes);
  const cached = new CachedCheckpoint(checkpoint);
  const start = seen;
  await prefetch(cached, onProgress, () => seen - start);
  const first = files[0] as File & { webkitRelativePath?: string };
  const label = first.webkitRelativePath ? first.webkitRelativePath.split('/')[0] : `${files.length} files`;
  return { label: `picked: ${label}`, config, checkpoint: cached, ...toks, notes };
}
