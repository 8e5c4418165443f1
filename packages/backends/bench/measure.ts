/**
 * One benchmark measurement, run in its own process so that peak RSS belongs to it alone:
 * `tsx bench/measure.ts '<json MeasureRequest>'` prints one JSON line.
 */
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { QFormerModel } from '@qf/core';
import { createOnnxBackend, type WeightFormat } from '@qf/backends/onnx';
import { tempFileStorage } from '@qf/backends/onnx/node';
import { DataType, encodeModel } from '../src/onnx/proto.js';
import * as ort from 'onnxruntime-node';
import {
  type BenchWorkload,
  gflopPerImage,
  imageEmbeds,
  itmGflop,
  texts,
  weights,
  withTextPath,
  workload,
} from './workload.js';

export interface MeasureRequest {
  readonly kind: 'qformer' | 'matmul' | 'rerank' | 'startup';
  /** `backend`: QFormerModel.run on the OnnxBackend; `file`: an exported file loaded by path. */
  readonly mode?: 'backend' | 'file';
  readonly file?: string;
  readonly weights?: WeightFormat;
  readonly fuseLinears?: boolean;
  /** In-process backend with `tempFileStorage()` (weights on disk, sessions from files). */
  readonly storage?: boolean;
  /** ORT's CPU memory arena (default on); off returns freed activation memory to the OS. */
  readonly arena?: boolean;
  /** rerank: one image shared by every text, or the image repeated once per text. */
  readonly shared?: boolean;
  readonly texts?: number;
  readonly textLength?: number;
  readonly quick: boolean;
  readonly threads: number;
  readonly batches: readonly number[];
  readonly runs: number;
}

export interface MeasureResult {
  readonly label: string;
  readonly rows: {
    batch: number;
    medianMs: number;
    imagesPerSec: number;
    gflopPerSec: number;
    runs: number;
  }[];
  readonly peakRssMiB: number;
  readonly weightMiB?: number;
  readonly gflopPerImage?: number;
  readonly matmulGflopPerSec?: number;
  /** startup: ms to create a session each way, and the B=1 median of each session. */
  readonly startup?: { label: string; createMs: number; runMs: number }[];
}

/** Peak RSS of this process so far. */
const peakRssMiB = () => (process.resourceUsage().maxRSS * 1024) / MIB;
/** Collects garbage where the process runs with --expose-gc (the benchmark's children do). */
const gc = () => (globalThis as { gc?: () => void }).gc?.();

const MIB = 2 ** 20;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2
    ? (s[(s.length - 1) / 2] as number)
    : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
};

async function time(runs: number, f: () => Promise<unknown>, warmup = 2): Promise<number> {
  for (let i = 0; i < warmup; i++) await f();
  const ts: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await f();
    ts.push(performance.now() - t0);
  }
  return median(ts);
}

/** A single [n, n] x [n, n] MatMul graph: the achievable GEMM rate of ORT on this machine. */
async function matmulPeak(threads: number, runs: number, n = 1024): Promise<number> {
  const b = new Float32Array(n * n).map((_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
  const model = encodeModel({
    irVersion: 8,
    opsets: [{ domain: '', version: 17 }],
    producerName: 'qformer-ts-bench',
    producerVersion: '0',
    graph: {
      name: 'matmul',
      nodes: [{ op: 'MatMul', inputs: ['a', 'b'], outputs: ['y'], name: 'mm' }],
      initializers: [{ name: 'b', dataType: DataType.FLOAT, dims: [n, n], data: new Uint8Array(b.buffer) }],
      inputs: [{ name: 'a', elemType: DataType.FLOAT, dims: [n, n] }],
      outputs: [{ name: 'y', elemType: DataType.FLOAT, dims: [n, n] }],
    },
  });
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
  const a = new ort.Tensor('float32', b.slice(), [n, n]);
  const ms = await time(runs, () => session.run({ a }));
  await session.release();
  return (2 * n * n * n) / (ms / 1000) / 1e9;
}

async function qformer(req: MeasureRequest, w: BenchWorkload): Promise<MeasureResult> {
  const gflop = gflopPerImage(w);
  const rows: MeasureResult['rows'] = [];
  let run: (b: number) => Promise<unknown>;
  let label: string;
  let release: () => Promise<void>;
  let weightMiB: number | undefined;
  if (req.mode === 'file') {
    if (!req.file) throw new Error('file mode needs a file');
    const session = await ort.InferenceSession.create(req.file, {
      intraOpNumThreads: req.threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
    });
    run = (b) =>
      session.run({
        image_embeds: new ort.Tensor('float32', imageEmbeds(w, b).data, [
          b,
          w.numImageTokens,
          w.spec.qformer.encoderHiddenSize,
        ]),
      });
    label = `onnx file (${req.weights ?? 'float32'}, ORT session from path, external data)`;
    release = () => session.release();
  } else {
    const made = backendModel(req, w);
    weightMiB = made.weightMiB;
    const { model, backend } = made;
    run = (b) => model.run({ image_embeds: imageEmbeds(w, b) });
    label = `onnx backend (${backendLabel(req)})`;
    release = async () => {
      model.dispose();
      await backend.dispose();
    };
  }
  for (const b of req.batches) {
    const runs = Math.max(3, Math.round(req.runs / Math.sqrt(b)));
    const ms = await time(runs, () => run(b));
    rows.push({
      batch: b,
      medianMs: ms,
      imagesPerSec: (1000 * b) / ms,
      gflopPerSec: (gflop * b) / (ms / 1000),
      runs,
    });
  }
  await release();
  return {
    label,
    rows,
    peakRssMiB: peakRssMiB(),
    weightMiB,
    gflopPerImage: gflop,
  };
}

function backendLabel(req: MeasureRequest): string {
  return [
    req.weights ?? 'float32',
    ...(req.fuseLinears === false ? ['no QKV fusion'] : []),
    req.storage ? 'tempFileStorage' : 'weights in memory',
    ...(req.arena === false ? ['no CPU arena'] : []),
  ].join(', ');
}

/**
 * The workload's model on a fresh OnnxBackend. The host tensors are dropped (and collected) once the
 * model holds them, as an application that loaded them for the model would.
 */
function backendModel(req: MeasureRequest, w: BenchWorkload) {
  const backend = createOnnxBackend({
    ort,
    intraOpNumThreads: req.threads,
    weights: req.weights ?? 'float32',
    fuseLinears: req.fuseLinears ?? true,
    ...(req.storage ? { storage: tempFileStorage() } : {}),
    ...(req.arena === false ? { sessionOptions: { enableCpuMemArena: false } } : {}),
  });
  const { tensors, bytes } = weights(w);
  const model = QFormerModel.fromTensors(backend, w.spec, tensors);
  tensors.clear();
  gc();
  return { backend, model, weightMiB: bytes / MIB };
}

/** ITM re-ranking of `texts` texts against one image: shared (rerank) or the image repeated. */
async function rerank(req: MeasureRequest, base: BenchWorkload): Promise<MeasureResult> {
  const w = withTextPath(base);
  const t = req.texts ?? 128;
  const l = req.textLength ?? 20;
  const { backend, model, weightMiB } = backendModel(req, w);
  const text = texts(w, t, l);
  const image = imageEmbeds(w, 1);
  const repeated = imageEmbeds(w, t); // same generator: every image equals `image`
  const run = req.shared
    ? () => model.rerank(image, text.input_ids, text.attention_mask)
    : () =>
        model.run(
          { image_embeds: repeated, input_ids: text.input_ids, attention_mask: text.attention_mask },
          { itmOnly: true },
        );
  const ms = await time(req.runs, run, 1);
  model.dispose();
  await backend.dispose();
  const gflop = itmGflop(w, t, l, req.shared ?? false);
  return {
    label: `${req.shared ? 'rerank: 1 image shared by' : 'naive: image repeated for'} ${t} texts (${backendLabel(req)})`,
    rows: [
      {
        batch: t,
        medianMs: ms,
        imagesPerSec: (1000 * t) / ms,
        gflopPerSec: gflop / (ms / 1000),
        runs: req.runs,
      },
    ],
    peakRssMiB: peakRssMiB(),
    weightMiB,
    gflopPerImage: gflop / t,
  };
}

/**
 * Session start-up: a fresh optimization of the exported query graph (saving ORT's optimized model)
 * against loading that saved model with optimization disabled, plus the backend's first call.
 */
async function startup(req: MeasureRequest, w: BenchWorkload): Promise<MeasureResult> {
  if (!req.file) throw new Error('startup needs a file');
  // Next to the exported file: ORT's saved model keeps pointing at its external data file.
  const saved = join(dirname(req.file), 'optimized.onnx');
  const x = imageEmbeds(w, 1);
  const feeds = { image_embeds: new ort.Tensor('float32', x.data, x.shape) };
  const base = { intraOpNumThreads: req.threads, interOpNumThreads: 1 };
  const rows: { label: string; createMs: number; runMs: number }[] = [];
  const measureSession = async (label: string, path: string, o: ort.InferenceSession.SessionOptions) => {
    const t0 = performance.now();
    const s = await ort.InferenceSession.create(path, { ...base, ...o });
    const createMs = performance.now() - t0;
    const runMs = await time(req.runs, () => s.run(feeds));
    await s.release();
    rows.push({ label, createMs, runMs });
  };
  try {
    await measureSession('exported file, optimize at load (level all) + save optimized', req.file, {
      graphOptimizationLevel: 'all',
      optimizedModelFilePath: saved,
    });
    await measureSession('saved optimized model, optimization disabled', saved, {
      graphOptimizationLevel: 'disabled',
    });
    await measureSession('exported file, optimize at load (level all)', req.file, {
      graphOptimizationLevel: 'all',
    });
    const t0 = performance.now();
    const { backend, model } = backendModel({ ...req, storage: true }, w);
    await model.run({ image_embeds: x });
    const firstMs = performance.now() - t0;
    const runMs = await time(req.runs, () => model.run({ image_embeds: x }));
    rows.push({
      label: 'backend (tempFileStorage): weights + trace + encode + session + first run',
      createMs: firstMs,
      runMs,
    });
    model.dispose();
    await backend.dispose();
  } finally {
    rmSync(saved, { force: true });
  }
  return { label: 'session start-up', rows: [], peakRssMiB: peakRssMiB(), startup: rows };
}

/** Runs one request and returns its result. */
export async function measure(req: MeasureRequest): Promise<MeasureResult> {
  if (req.kind === 'matmul') {
    const g = await matmulPeak(req.threads, req.runs);
    return {
      label: 'ORT MatMul 1024^3',
      rows: [],
      peakRssMiB: peakRssMiB(),
      matmulGflopPerSec: g,
    };
  }
  if (req.kind === 'rerank') return rerank(req, workload(req.quick));
  if (req.kind === 'startup') return startup(req, workload(req.quick));
  return qformer(req, workload(req.quick));
}

if (process.argv[2]?.startsWith('{')) {
  const req = JSON.parse(process.argv[2]) as MeasureRequest;
  measure(req).then(
    (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
