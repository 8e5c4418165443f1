import { chmod, mkdir, mkdtemp, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { wordLevelTokenizerFiles } from '@qf/bridge';
import { CLIP_MEAN, CLIP_STD } from '@qf/core';
import type { HostTensor } from '@qf/io';
import { writeCheckpointDir, writeSafetensorsFile } from '@qf/io/node';
import { stage1CheckpointTensors } from '@qf/losses';
import { type ShapeExample, shapesVocabulary, writePng } from '@qf/shapes';

/** Files of the demo checkpoint directory besides config.json and model.safetensors. */
export const DEMO_FILES = {
  tokenizer: 'tokenizer.json',
  tokenizerConfig: 'tokenizer_config.json',
  qformerTokenizer: 'qformer_tokenizer',
  preprocessor: 'preprocessor_config.json',
  figures: 'demo.json',
  samples: 'samples',
} as const;

/** HF `BlipImageProcessor` settings for the demo's image size (what `qf caption` and HF read). */
export function preprocessorConfig(imageSize: number): Record<string, unknown> {
  return {
    image_processor_type: 'BlipImageProcessor',
    processor_class: 'Blip2Processor',
    do_convert_rgb: true,
    do_resize: true,
    size: { height: imageSize, width: imageSize },
    resample: 3,
    do_rescale: true,
    rescale_factor: 1 / 255,
    do_normalize: true,
    image_mean: [...CLIP_MEAN],
    image_std: [...CLIP_STD],
  };
}

const json = (x: unknown) => `${JSON.stringify(x, null, 2)}\n`;

/** What goes into the checkpoint. */
export interface DemoCheckpoint {
  readonly config: Record<string, unknown>;
  /** `vision_model.*` of the frozen encoder (no auxiliary heads). */
  readonly vision: ReadonlyMap<string, HostTensor>;
  /** Q-Former model + stage-1 extras (`temp`, `Qformer.cls.predictions.*`). */
  readonly qformer: ReadonlyMap<string, HostTensor>;
  /** `language_model.*` of the frozen OPT. */
  readonly lm: ReadonlyMap<string, HostTensor>;
  /** Test images written as PNG next to a `samples.json` of their captions. */
  readonly samples: readonly ShapeExample[];
  /** `qf run` inputs of the samples (image_embeds, input_ids, attention_mask), to `samples/inputs.safetensors`. */
  readonly sampleInputs: Readonly<Record<string, HostTensor>>;
  readonly metadata: Readonly<Record<string, string>>;
}

/**
 * A staging directory next to `out` (so the final rename stays on one file system), holding the
 * whole checkpoint: config.json + model.safetensors (HF names, the tied ITG decoder copies added for
 * LAVIS), both tokenizers, the image processor config and sample images. {@link commitStaged}
 * moves it into place.
 */
export async function stageCheckpoint(out: string, c: DemoCheckpoint): Promise<string> {
  const target = resolve(out);
  await mkdir(dirname(target), { recursive: true });
  const dir = await mkdtemp(join(dirname(target), `.${basename(target)}.staging-`));
  try {
    await chmod(dir, 0o755); // mkdtemp makes it private; the result is an ordinary output directory
    const tensors: Record<string, HostTensor> = {};
    for (const m of [c.vision, stage1CheckpointTensors(c.qformer), c.lm])
      for (const [k, v] of m) tensors[k] = v;
    await writeCheckpointDir(dir, { config: c.config, tensors, metadata: { format: 'pt', ...c.metadata } });
    const v = shapesVocabulary();
    const lmTok = wordLevelTokenizerFiles(v.lm.tokens, { pad: v.lm.pad, unk: v.lm.unk, bos: v.lm.bos });
    await writeFile(join(dir, DEMO_FILES.tokenizer), json(lmTok.tokenizer));
    await writeFile(join(dir, DEMO_FILES.tokenizerConfig), json(lmTok.config));
    const q = v.qformer;
    const qTok = wordLevelTokenizerFiles(q.tokens, { pad: q.pad, unk: q.unk, bos: q.cls, eos: q.sep });
    await mkdir(join(dir, DEMO_FILES.qformerTokenizer));
    await writeFile(join(dir, DEMO_FILES.qformerTokenizer, DEMO_FILES.tokenizer), json(qTok.tokenizer));
    await writeFile(join(dir, DEMO_FILES.qformerTokenizer, DEMO_FILES.tokenizerConfig), json(qTok.config));
    const vision = c.config['vision_config'] as { image_size: number };
    await writeFile(join(dir, DEMO_FILES.preprocessor), json(preprocessorConfig(vision.image_size)));
    await mkdir(join(dir, DEMO_FILES.samples));
    const list = c.samples.map((ex, i) => ({
      file: `test-${String(i).padStart(3, '0')}.png`,
      caption: ex.caption,
    }));
    for (const [i, ex] of c.samples.entries())
      await writeFile(join(dir, DEMO_FILES.samples, list[i]?.file as string), writePng(ex.image));
    await writeFile(join(dir, DEMO_FILES.samples, 'samples.json'), json(list));
    await writeSafetensorsFile(join(dir, DEMO_FILES.samples, 'inputs.safetensors'), c.sampleInputs, {
      format: 'pt',
    });
    return dir;
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

/** Writes `demo.json` into the staged directory. */
export async function writeFigures(staged: string, report: unknown): Promise<void> {
  await writeFile(join(staged, DEMO_FILES.figures), json(report));
}

/**
 * Replaces `out` by the staged directory: `out` (if any) is renamed aside, the staged directory is
 * renamed to `out`, then the old one is removed. A reader sees the old or the new directory, never
 * a half-written one.
 */
export async function commitStaged(staged: string, out: string): Promise<string> {
  const target = resolve(out);
  let old: string | undefined;
  try {
    await stat(target);
    old = `${staged}.old`;
    await rename(target, old);
  } catch (e) {
    if ((e as { code?: string }).code !== 'ENOENT') throw e;
  }
  try {
    await rename(staged, target);
  } catch (e) {
    if (old) await rename(old, target).catch(() => undefined);
    throw e;
  }
  if (old) await rm(old, { recursive: true, force: true });
  return target;
}
