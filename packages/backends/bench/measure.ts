/**
 * One benchmark measurement, run in its own process so that peak RSS belongs to it alone:
 * `tsx bench/measure.ts '<json MeasureRequest>'` prints one JSON line.
 */
import { QFormerModel } from '@qf/core';
import { createOnnxBackend, type WeightFormat } from '@qf/backends/onnx';
import { DataType, encodeModel } from '../src/onnx/proto.js';
import * as ort from 'onnxruntime-node';
import { type BenchWorkload, gflopPerImage, imageEmbeds, weights, workload } from './workload.js';

export interface MeasureRequest {
  readonly kind: 'qformer' | 'matmul';
  /** `backend`: QFormerModel.run on the OnnxBackend; `file`: an exported file loaded by path. */
  readonly mode?: 'backend' | 'file';
  readonly file?: string;
  readonly weights?: WeightFormat;
  readonly fuseLinears?: boolean;
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
}

const MIB = 2 ** 20;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2
    ? (s[(s.length - 1) / 2] as number)
    : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
};

async function time(runs: number, f: () => Promise<unknown>): Promise<number> {
  await f();
  await f();
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
    const { tensors, bytes } = weights(w);
    weightMiB = bytes / MIB;
    const backend = createOnnxBackend({
      ort,
      intraOpNumThreads: req.threads,
      weights: req.weights ?? 'float32',
      fuseLinears: req.fuseLinears ?? true,
    });
    const model = QFormerModel.fromTensors(backend, w.spec, tensors);
    run = (b) => model.run({ image_embeds: imageEmbeds(w, b) });
    label = `onnx backend (${req.weights ?? 'float32'}${req.fuseLinears === false ? ', no QKV fusion' : ''})`;
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
    peakRssMiB: (process.resourceUsage().maxRSS * 1024) / MIB,
    weightMiB,
    gflopPerImage: gflop,
  };
}

/** Runs one request and returns its result. */
export async function measure(req: MeasureRequest): Promise<MeasureResult> {
  if (req.kind === 'matmul') {
    const g = await matmulPeak(req.threads, req.runs);
    return {
      label: 'ORT MatMul 1024^3',
      rows: [],
      peakRssMiB: (process.resourceUsage().maxRSS * 1024) / MIB,
      matmulGflopPerSec: g,
    };
  }
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
