/** Runs an exported ONNX file in a fresh onnxruntime-node session: no qformer-ts code involved. */
import type { HostTensor } from '@qf/io';
import * as ort from 'onnxruntime-node';
import { expect } from 'vitest';

/** Output of {@link runOnnxFile}. */
export interface OnnxFileRun {
  readonly inputNames: string[];
  readonly outputNames: string[];
  /** Every output, checked to be float32. */
  readonly outputs: Record<string, HostTensor>;
}

/**
 * Feeds the session's declared inputs from `feeds` (F32 as float32, integer dtypes as int64) and
 * returns its outputs. A declared input missing from `feeds` is an error.
 */
export async function runOnnxFile(
  path: string,
  feeds: Record<string, HostTensor | undefined>,
): Promise<OnnxFileRun> {
  const session = await ort.InferenceSession.create(path, { intraOpNumThreads: 1 });
  try {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const name of session.inputNames) {
      const t = feeds[name];
      if (!t) throw new Error(`no feed for ${name}`);
      ortFeeds[name] =
        t.dtype === 'F32'
          ? new ort.Tensor('float32', t.data as Float32Array, [...t.shape])
          : new ort.Tensor(
              'int64',
              BigInt64Array.from(t.data as ArrayLike<number | bigint>, (v) => BigInt(v)),
              [...t.shape],
            );
    }
    const results = await session.run(ortFeeds);
    const outputs: Record<string, HostTensor> = {};
    for (const [k, v] of Object.entries(results)) {
      expect(v.type, k).toBe('float32');
      outputs[k] = { dtype: 'F32', shape: v.dims.map(Number), data: v.data as Float32Array };
    }
    return { inputNames: [...session.inputNames], outputNames: [...session.outputNames], outputs };
  } finally {
    await session.release();
  }
}
