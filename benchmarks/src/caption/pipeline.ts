import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createOnnxBackend } from '@qf/backends/onnx';
import { type Blip2OnnxRunner, openBlip2Onnx, tempFileStorage, writeBlip2Onnx } from '@qf/backends/onnx/node';
import { createTfjsBackend } from '@qf/backends/tfjs';
import {
  type Blip2LanguageModel,
  Blip2Model,
  type DecodingSession,
  type GenerateOptions,
  OptLanguageModel,
  blip2GenerateOptions,
} from '@qf/bridge';
import { loadBlip2FromDir } from '@qf/bridge/node';
import { visionGraph, visionGraphKey } from '@qf/core';
import type { Blip2Config, HostTensor } from '@qf/io';
import * as tf from '@tensorflow/tfjs-core';
import type * as Ort from 'onnxruntime-node';
import { type CaptionWorkload, lazyRandomTensors } from './workloads.js';

/** The backends of the captioning benchmark. */
export const CAPTION_BACKENDS = ['tfjs-cpu', 'onnx'] as const;
export type CaptionBackend = (typeof CAPTION_BACKENDS)[number];

/**
 * A captioning pipeline split into the phases the benchmark times: the vision tower, the Q-Former +
 * projector (soft prompt), and the LM decoding session (prefill, then one step per token).
 */
export interface CaptionPipeline {
  readonly backend: CaptionBackend;
  readonly threads: number;
  readonly config: Blip2Config;
  readonly lm: Blip2LanguageModel;
  /** Seconds spent getting ready (loading or random weights, ONNX export and session creation happen on first use). */
  readonly setupSeconds: number;
  vision(pixelValues: HostTensor): Promise<HostTensor>;
  softPrompt(imageEmbeds: HostTensor): Promise<HostTensor>;
  session(softPrompt: HostTensor, ids: HostTensor): DecodingSession;
  /** Backend-held resources that must not grow across runs (tfjs tensors; ONNX sessions). */
  liveResources(): number;
  dispose(): Promise<void>;
}

/** `Blip2GenerateOptions` -> the shared `generate` options, with BLIP-2's length bookkeeping. */
export function generateOptions(
  p: CaptionPipeline,
  promptLength: number,
  newTokens: number,
): GenerateOptions {
  // minNewTokens = maxNewTokens: EOS is suppressed, so every run decodes exactly `newTokens` tokens.
  return blip2GenerateOptions(p.config, p.lm, promptLength, {
    maxNewTokens: newTokens,
    minNewTokens: newTokens,
    numBeams: 1,
  });
}

async function tfjsPipeline(w: CaptionWorkload): Promise<CaptionPipeline> {
  const t0 = performance.now();
  const backend = await createTfjsBackend('cpu');
  const model = w.modelDir
    ? (await loadBlip2FromDir(backend, w.modelDir)).model
    : Blip2Model.fromTensors(backend, w.config, lazyRandomTensors(w.config));
  const setupSeconds = (performance.now() - t0) / 1000;
  const qformer = model.qformerProjectorGraph();
  return {
    backend: 'tfjs-cpu',
    threads: 1,
    config: model.config,
    lm: model.lm,
    setupSeconds,
    async vision(pixelValues) {
      const out = await backend.run(visionGraphKey(), visionGraph(model.config.vision, model.params), {
        pixel_values: pixelValues,
      });
      return out['vision_output'] as HostTensor;
    },
    async softPrompt(imageEmbeds) {
      const out = await backend.run('bench:qformer-projector', qformer, { image_embeds: imageEmbeds });
      return out['language_projection'] as HostTensor;
    },
    session(softPrompt, ids) {
      const prompt = { softPrompt, inputIds: ids };
      return model.lm instanceof OptLanguageModel
        ? model.lm.session(backend, model.params, prompt)
        : model.lm.session(backend, model.params, prompt);
    },
    liveResources: () => tf.memory().numTensors,
    async dispose() {
      model.dispose();
    },
  };
}

/**
 * Exports the workload's model with `writeBlip2Onnx` (random weights streamed through
 * `tempFileStorage()`), then opens the files with onnxruntime-node: the path a deployment runs.
 */
async function onnxPipeline(w: CaptionWorkload, threads: number): Promise<CaptionPipeline> {
  const t0 = performance.now();
  const ort = (await import('onnxruntime-node')) as typeof Ort;
  const dir = await mkdtemp(join(tmpdir(), 'qf-caption-bench-'));
  const exporter = createOnnxBackend({ name: 'onnx-export', storage: tempFileStorage() });
  try {
    const model = w.modelDir
      ? (await loadBlip2FromDir(exporter, w.modelDir)).model
      : Blip2Model.fromTensors(exporter, w.config, lazyRandomTensors(w.config));
    await writeBlip2Onnx(model, dir, { weights: w.onnxWeights });
    model.dispose();
  } finally {
    await exporter.dispose();
  }
  const runner: Blip2OnnxRunner = await openBlip2Onnx(dir, { ort, intraOpNumThreads: threads });
  const projector = runner.manifest.parts.find((p) => p.part === 'qformer_projector');
  if (!projector) throw new Error('the export has no qformer_projector part');
  const params = runner.backend.createParams(new Map());
  const noGraph = () => {
    throw new Error('not traced');
  };
  return {
    backend: 'onnx',
    threads,
    config: runner.config,
    lm: runner.lm,
    setupSeconds: (performance.now() - t0) / 1000,
    vision: (pixelValues) => runner.vision(pixelValues),
    async softPrompt(imageEmbeds) {
      const out = await runner.backend.run(projector.graphKey, noGraph, { image_embeds: imageEmbeds });
      return out['language_projection'] as HostTensor;
    },
    session(softPrompt, ids) {
      const prompt = { softPrompt, inputIds: ids };
      return runner.lm instanceof OptLanguageModel
        ? runner.lm.session(runner.backend, params, prompt)
        : runner.lm.session(runner.backend, params, prompt);
    },
    liveResources: () => runner.backend.sessionCount,
    async dispose() {
      await runner.dispose();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Opens a workload on a backend (the ONNX export and load count as set-up, not as latency). */
export function openPipeline(
  w: CaptionWorkload,
  backend: CaptionBackend,
  onnxThreads: number,
): Promise<CaptionPipeline> {
  return backend === 'tfjs-cpu' ? tfjsPipeline(w) : onnxPipeline(w, onnxThreads);
}
