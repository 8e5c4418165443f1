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

/**
 * The backends of the captioning benchmark: tfjs-cpu, and the exported files on onnxruntime-node
 * with ORT's default session options (`onnx`) or with its intra-op threads not spin-waiting
 * (`onnx-nospin`: `session.intra_op.allow_spinning = 0`).
 */
export const CAPTION_BACKENDS = ['tfjs-cpu', 'onnx', 'onnx-nospin'] as const;
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
  /** Seconds spent getting ready: tfjs, loading (or making) the weights; ONNX, the export to files (sessions open in the warm-up). */
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

/** Exported models of this process, by workload: both ONNX variants open the same files. */
const exports = new Map<string, Promise<{ dir: string; seconds: number }>>();

/**
 * Exports the workload's model with `writeBlip2Onnx` (random weights streamed through
 * `tempFileStorage()`) to a temporary directory, once per workload (see {@link removeExports}).
 */
function exportOnce(w: CaptionWorkload): Promise<{ dir: string; seconds: number }> {
  let e = exports.get(w.name);
  if (!e) {
    e = (async () => {
      const t0 = performance.now();
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
      return { dir, seconds: (performance.now() - t0) / 1000 };
    })();
    exports.set(w.name, e);
  }
  return e;
}

/** Deletes the exported files of every workload. */
export async function removeExports(): Promise<void> {
  const all = [...exports.values()];
  exports.clear();
  for (const e of all) await rm((await e).dir, { recursive: true, force: true });
}

/** Opens the exported files with onnxruntime-node: the path a deployment runs. */
async function onnxPipeline(w: CaptionWorkload, threads: number, spin: boolean): Promise<CaptionPipeline> {
  const ort = (await import('onnxruntime-node')) as typeof Ort;
  const { dir, seconds } = await exportOnce(w);
  const runner: Blip2OnnxRunner = await openBlip2Onnx(dir, {
    ort,
    intraOpNumThreads: threads,
    ...(spin ? {} : { sessionOptions: { extra: { session: { intra_op: { allow_spinning: '0' } } } } }),
  });
  const projector = runner.manifest.parts.find((p) => p.part === 'qformer_projector');
  if (!projector) throw new Error('the export has no qformer_projector part');
  const params = runner.backend.createParams(new Map());
  const noGraph = () => {
    throw new Error('not traced');
  };
  return {
    backend: spin ? 'onnx' : 'onnx-nospin',
    threads,
    config: runner.config,
    lm: runner.lm,
    // The ONNX export (made once per workload; both ONNX variants open the same files).
    setupSeconds: seconds,
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
    },
  };
}

/** Opens a workload on a backend (the ONNX export and load count as set-up, not as latency). */
export function openPipeline(
  w: CaptionWorkload,
  backend: CaptionBackend,
  onnxThreads: number,
): Promise<CaptionPipeline> {
  return backend === 'tfjs-cpu' ? tfjsPipeline(w) : onnxPipeline(w, onnxThreads, backend === 'onnx');
}
