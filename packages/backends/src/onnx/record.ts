import type { GraphFn, Ops } from '@qf/core';
import { OnnxBackendError } from './errors.js';
import { onnxOps } from './ops.js';
import type { Dim } from './proto.js';
import { type ElemType, type Sym, Trace } from './trace.js';

/** A graph input to trace with: its element type and dims (numbers or symbolic names). */
export interface InputSpec {
  readonly elemType: ElemType;
  readonly dims: readonly Dim[];
}

/** A finished recording: the trace and the named output symbols. */
export interface Recording {
  readonly trace: Trace;
  readonly outputs: Readonly<Record<string, Sym>>;
}

/**
 * Records graphs: `ops` appends to whichever trace is active, so one ops object (the backend's
 * `ops`) serves every recording.
 */
export class Recorder {
  private active: Trace | undefined;
  readonly ops: Ops<Sym>;

  constructor(name: string) {
    this.ops = onnxOps(name, () => {
      if (!this.active) {
        throw new OnnxBackendError(
          'ONNX_TRACE',
          'onnx ops record graphs: call them inside backend.run (or record) only',
        );
      }
      return this.active;
    });
  }

  /** Traces `fn` on symbolic inputs. */
  record<K extends string>(fn: GraphFn<Sym, K>, inputs: Readonly<Record<string, InputSpec>>): Recording {
    if (this.active) throw new OnnxBackendError('ONNX_TRACE', 'nested recording is not supported');
    const trace = new Trace();
    this.active = trace;
    try {
      const syms: Record<string, Sym> = {};
      for (const [name, spec] of Object.entries(inputs))
        syms[name] = trace.input(name, spec.elemType, spec.dims);
      const outputs = fn(this.ops, syms) as Record<string, Sym>;
      return { trace, outputs };
    } finally {
      this.active = undefined;
    }
  }
}

/** Symbolic dimension names of the Q-Former inputs. */
export const INPUT_DIMS: Readonly<Record<string, readonly Dim[]>> = {
  image_embeds: ['batch', 'num_image_tokens', null],
  image_attention_mask: ['batch', 'num_image_tokens'],
  input_ids: ['batch', 'text_length'],
  attention_mask: ['batch', 'text_length'],
};

/** Dims to trace an input with: the Q-Former names where known, else `${name}_dim{i}`. */
export function inputDims(name: string, rank: number, lastDim?: number): Dim[] {
  const known = INPUT_DIMS[name];
  if (known && known.length === rank)
    return known.map((d, i) => (d === null && i === rank - 1 ? (lastDim ?? null) : d));
  return Array.from({ length: rank }, (_, i) => `${name}_dim${i}`);
}

/**
 * Dims to trace a set of host inputs with (see {@link inputDims}). An input whose leading dim is 1
 * while another input's is larger is a broadcast operand (e.g. one image shared by T texts in the ITM
 * pass): it is traced with a static 1 there, so the graph's signature says so and gets its own session.
 */
export function traceDims(
  inputs: Readonly<Record<string, { readonly shape: readonly number[] }>>,
): Record<string, Dim[]> {
  const lead = Math.max(0, ...Object.values(inputs).map((t) => t.shape[0] ?? 0));
  const out: Record<string, Dim[]> = {};
  for (const [name, t] of Object.entries(inputs)) {
    const dims = inputDims(name, t.shape.length, t.shape[t.shape.length - 1]);
    if (t.shape[0] === 1 && lead > 1) dims[0] = 1;
    out[name] = dims;
  }
  return out;
}
