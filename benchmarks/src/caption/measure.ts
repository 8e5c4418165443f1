import { type DecodingSession, bosPrompt, generate } from '@qf/bridge';
import { type RawImage, Rng, preprocessImages } from '@qf/core';
import { median, quantile } from '../stats.js';
import { type CaptionPipeline, generateOptions } from './pipeline.js';
import type { CaptionWorkload } from './workloads.js';

/** One measured (backend, workload) combination. */
export interface CaptionResult {
  readonly backend: string;
  readonly threads: number;
  readonly workload: string;
  /** Images per caption call (1: one image captioned at a time). */
  readonly batch: number;
  /** Tokens generated per caption (exactly; EOS suppressed until then). */
  readonly newTokens: number;
  readonly warmupRuns: number;
  readonly runs: number;
  /** End to end per run: preprocess + vision + Q-Former/projector + LM (prefill and every step), ms. */
  readonly captionMs: readonly number[];
  readonly medianMs: number;
  readonly p90Ms: number;
  /** Medians of each phase, ms. */
  readonly phases: {
    readonly preprocess: number;
    readonly vision: number;
    readonly qformer: number;
    /** Prefill (soft prompt + BOS) through the first token's logits. */
    readonly prefill: number;
    /** One decoding step (one more token with the KV cache). */
    readonly step: number;
    /** Prefill and every step: the generation of `newTokens` tokens. */
    readonly lm: number;
  };
  /** newTokens * batch / median LM time: the generation rate once the soft prompt exists. */
  readonly tokensPerSec: number;
  /** Seconds to get ready: weights (loaded or random), and for ONNX the export to files. */
  readonly setupSeconds: number;
  /** First caption (the warm-up, which opens ONNX sessions / fills tfjs caches), ms. */
  readonly firstMs: number;
  /** `process.memoryUsage().rss` after the last run, MiB. */
  readonly rssMiB: number;
  /** Backend resources (tfjs tensors or ONNX sessions) after the warm-up and after the last run. */
  readonly liveBefore: number;
  readonly liveAfter: number;
}

/** A seeded RGB test image (it is resized to the model's image size, as a real photo would be). */
export function testImage(width = 640, height = 480, seed = 7): RawImage {
  const rng = new Rng(seed);
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(rng.uniform() * 256);
  return { data, width, height, channels: 3 };
}

/** Wraps a session to time its prefill and its steps. */
function timed(s: DecodingSession, t: { prefill: number; steps: number; count: number }): DecodingSession {
  return {
    get rows() {
      return s.rows;
    },
    vocabSize: s.vocabSize,
    async prefill() {
      const t0 = performance.now();
      const out = await s.prefill();
      t.prefill += performance.now() - t0;
      return out;
    },
    async step(tokens) {
      const t0 = performance.now();
      const out = await s.step(tokens);
      t.steps += performance.now() - t0;
      t.count++;
      return out;
    },
    reorder: (index) => s.reorder(index),
    dispose: () => s.dispose(),
  };
}

interface RunTimes {
  caption: number;
  preprocess: number;
  vision: number;
  qformer: number;
  prefill: number;
  step: number;
  lm: number;
}

async function captionOnce(p: CaptionPipeline, w: CaptionWorkload, image: RawImage): Promise<RunTimes> {
  const t0 = performance.now();
  const pixelValues = preprocessImages([image], { imageSize: p.config.vision.imageSize });
  const t1 = performance.now();
  const embeds = await p.vision(pixelValues);
  const t2 = performance.now();
  const soft = await p.softPrompt(embeds);
  const t3 = performance.now();
  const bos = p.lm.tokens.bos;
  if (bos === undefined) throw new Error('the LM config has no bos_token_id');
  const ids = bosPrompt(1, bos);
  const t = { prefill: 0, steps: 0, count: 0 };
  const session = timed(p.session(soft, ids), t);
  try {
    const res = await generate(session, generateOptions(p, 1, w.newTokens));
    if (res.sequences.shape[1] !== w.newTokens)
      throw new Error(`generated ${res.sequences.shape[1]} tokens, expected ${w.newTokens}`);
  } finally {
    session.dispose();
  }
  const t4 = performance.now();
  return {
    caption: t4 - t0,
    preprocess: t1 - t0,
    vision: t2 - t1,
    qformer: t3 - t2,
    prefill: t.prefill,
    step: t.count > 0 ? t.steps / t.count : 0,
    lm: t4 - t3,
  };
}

/** Options of {@link measureCaption}. */
export interface CaptionMeasureOptions {
  readonly runs: number;
  readonly warmup: number;
  readonly onRun?: (phase: 'warmup' | 'timed', index: number, ms: number) => void;
}

/** Warm-up captions, then timed captions of one test image on one pipeline. */
export async function measureCaption(
  p: CaptionPipeline,
  w: CaptionWorkload,
  o: CaptionMeasureOptions,
): Promise<CaptionResult> {
  const image = testImage();
  let firstMs = 0;
  for (let i = 1; i <= o.warmup; i++) {
    const r = await captionOnce(p, w, image);
    if (i === 1) firstMs = r.caption;
    o.onRun?.('warmup', i, r.caption);
  }
  const liveBefore = p.liveResources();
  const runs: RunTimes[] = [];
  for (let i = 1; i <= o.runs; i++) {
    const r = await captionOnce(p, w, image);
    runs.push(r);
    o.onRun?.('timed', i, r.caption);
  }
  const liveAfter = p.liveResources();
  const med = (k: keyof RunTimes) => median(runs.map((r) => r[k]));
  const captionMs = runs.map((r) => r.caption);
  return {
    backend: p.backend,
    threads: p.threads,
    workload: w.name,
    batch: 1,
    newTokens: w.newTokens,
    warmupRuns: o.warmup,
    runs: runs.length,
    captionMs,
    medianMs: median(captionMs),
    p90Ms: quantile(captionMs, 0.9),
    phases: {
      preprocess: med('preprocess'),
      vision: med('vision'),
      qformer: med('qformer'),
      prefill: med('prefill'),
      step: med('step'),
      lm: med('lm'),
    },
    tokensPerSec: w.newTokens / (med('lm') / 1000),
    setupSeconds: p.setupSeconds,
    firstMs,
    rssMiB: process.memoryUsage.rss() / 2 ** 20,
    liveBefore,
    liveAfter,
  };
}
