import type { Blip2Caption } from '@qf/bridge';
import { loadBlip2FromDir } from '@qf/bridge/node';
import type { Backend, RawImage } from '@qf/core';
import { decodeImageFile } from '@qf/io/node';
import {
  type CliBackendName,
  DEFAULT_ONNX_THREADS,
  checkThreads,
  closeBackend,
  openBackend,
} from './backend.js';
import { fmtMs } from './format.js';
import { requireDirectory } from './paths.js';
import type { CliStreams } from './streams.js';

/** Options of `qf caption`. */
export interface CaptionCommandOptions {
  /** LM prompt (and InstructBLIP's instruction), the same for every image. */
  readonly prompt?: string | undefined;
  readonly backend?: CliBackendName;
  /** `onnx` only: ONNX Runtime threads per operator (default 2). */
  readonly threads?: number | undefined;
  /** Beam search width (default 1: greedy). */
  readonly beams?: number | undefined;
  /** Most new tokens per caption (default: as HF `generate`). */
  readonly maxNewTokens?: number | undefined;
  /** Fail when the checkpoint holds tensors the model does not use. */
  readonly strict?: boolean | undefined;
}

/** One captioned image. */
export interface CaptionEntry {
  /** The image path as given. */
  readonly image: string;
  readonly caption: string;
  /** HF `generate` output row: prompt (decoder-only) or decoder start (T5), new tokens, padding. */
  readonly ids: number[];
}

/** What {@link captionImagesInDir} did. */
export interface CaptionResult {
  readonly captions: CaptionEntry[];
  readonly ignored: readonly string[];
  readonly loadMs: number;
  readonly runMs: number;
}

async function loadAndCaption<T>(
  backend: Backend<T>,
  dir: string,
  images: readonly RawImage[],
  options: CaptionCommandOptions,
): Promise<{ captions: Blip2Caption[]; ignored: readonly string[]; loadMs: number; runMs: number }> {
  const t0 = performance.now();
  const { model, tokenizer, qformerTokenizer } = await loadBlip2FromDir(backend, dir, {
    strict: options.strict ?? false,
    requireTokenizer: true,
  });
  const t1 = performance.now();
  try {
    const captions = await model.captionDetailed(images, {
      tokenizer,
      qformerTokenizer,
      prompt: options.prompt,
      numBeams: options.beams,
      maxNewTokens: options.maxNewTokens,
    });
    return { captions, ignored: model.ignored, loadMs: t1 - t0, runMs: performance.now() - t1 };
  } finally {
    model.dispose();
  }
}

/**
 * `qf caption`: decodes the images (PNG, JPEG, ...), loads a whole BLIP-2 / InstructBLIP model
 * directory with its tokenizer(s) and captions every image in one batch (the prompt, if any, is used
 * for every image; InstructBLIP needs one).
 */
export async function captionImagesInDir(
  modelDir: string,
  imagePaths: readonly string[],
  options: CaptionCommandOptions = {},
): Promise<CaptionResult> {
  const dir = await requireDirectory(modelDir, 'model directory');
  const backendName = options.backend ?? 'tfjs-cpu';
  checkThreads(backendName, options.threads);
  const images: RawImage[] = [];
  for (const path of imagePaths) images.push(await decodeImageFile(path));
  const backend = await openBackend(backendName, { threads: options.threads });
  try {
    const ran = await loadAndCaption<unknown>(backend, dir, images, options);
    return {
      captions: ran.captions.map((c, i) => ({
        image: imagePaths[i] as string,
        caption: c.caption,
        ids: c.ids,
      })),
      ignored: ran.ignored,
      loadMs: ran.loadMs,
      runMs: ran.runMs,
    };
  } finally {
    await closeBackend(backend);
  }
}

/** The `qf caption` command: one caption per line (or a JSON array with `json`), timings on stderr. */
export async function captionCommand(
  modelDir: string,
  imagePaths: readonly string[],
  options: CaptionCommandOptions & { readonly json?: boolean | undefined },
  streams: CliStreams,
): Promise<void> {
  const result = await captionImagesInDir(modelDir, imagePaths, options);
  if (result.ignored.length > 0) {
    streams.err(
      `note: ${result.ignored.length} checkpoint tensor(s) not used by the model (e.g. ${result.ignored[0]}); --strict makes this an error\n`,
    );
  }
  if (options.json) streams.out(`${JSON.stringify(result.captions, null, 2)}\n`);
  else streams.out(result.captions.map((c) => `${c.caption}\n`).join(''));
  const name = options.backend ?? 'tfjs-cpu';
  const label = name === 'onnx' ? `onnx, ${options.threads ?? DEFAULT_ONNX_THREADS} threads` : name;
  streams.err(
    `captioned ${result.captions.length} image(s) (${label}: load ${fmtMs(result.loadMs)}, run ${fmtMs(result.runMs)})\n`,
  );
}
