import { OnnxBackendError } from './errors.js';
import {
  DataType,
  type DataTypeCode,
  type Dim,
  type NodeDef,
  type TensorDef,
  type ValueInfoDef,
  type AttrDef,
  bytesOf,
} from './proto.js';

/** Element types of symbolic tensors: floats are float32, integers (ids, indices) int64. */
export type ElemType = 'float32' | 'int64';

/** ONNX data type of an element type. */
export const dataTypeOf = (t: ElemType): DataTypeCode => (t === 'float32' ? DataType.FLOAT : DataType.INT64);

/**
 * Host data behind a parameter: in memory (`data`) or in an {@link OnnxStorage} (`read`). Both are
 * dropped when its store is disposed.
 */
export interface ParamData {
  readonly storeId: number;
  readonly shape: readonly number[];
  data: Float32Array | undefined;
  /** Reads the values back from storage (a fresh array each call). */
  read?: (() => Float32Array) | undefined;
}

/** Whether a parameter still has its values (it was not disposed). */
export function paramAlive(p: ParamData): boolean {
  return p.data !== undefined || p.read !== undefined;
}

/**
 * A symbolic tensor: the name of a value in a graph being recorded, with its element type and
 * best-known dims. Parameters are symbols with host data that become initializers when used.
 */
export class Sym {
  constructor(
    /** The trace that produced it, or undefined for a parameter (usable in every trace). */
    readonly trace: Trace | undefined,
    /** The ONNX value name (for parameters: the canonical HF name). */
    readonly name: string,
    readonly elemType: ElemType,
    readonly dims: readonly Dim[],
    readonly param?: ParamData,
  ) {}

  get rank(): number {
    return this.dims.length;
  }
}

/** An initializer recorded by a trace; its bytes are produced only when the model is encoded. */
export interface InitSource {
  readonly name: string;
  readonly dataType: DataTypeCode;
  readonly dims: readonly number[];
  /** Number of bytes of the payload. */
  readonly byteLength: number;
  /** Produces the little-endian payload. */
  bytes(): Uint8Array;
  /** The float32 values (parameters only), used by weight transforms (fp16, int8). */
  floats?(): Float32Array;
  /** True for model parameters (weights), false for small graph constants. */
  readonly isParam: boolean;
}

function paramFloats(p: ParamData, name: string): Float32Array {
  const v = p.data ?? p.read?.();
  if (!v) throw new OnnxBackendError('ONNX_DISPOSED', `parameter "${name}" was disposed`);
  return v;
}

function checkAlive(p: ParamData, name: string): void {
  if (!paramAlive(p)) throw new OnnxBackendError('ONNX_DISPOSED', `parameter "${name}" was disposed`);
}

/** Transposes a row-major [r, c] matrix. */
export function transpose2d(src: Float32Array, r: number, c: number): Float32Array {
  const out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) {
    const row = i * c;
    for (let j = 0; j < c; j++) out[j * r + i] = src[row + j] as number;
  }
  return out;
}

/**
 * One recording: nodes in topological order (the order ops were called), initializers, inputs.
 */
export class Trace {
  readonly nodes: NodeDef[] = [];
  readonly inits = new Map<string, InitSource>();
  readonly inputs: ValueInfoDef[] = [];
  /** Ids of the parameter stores whose tensors this trace captured. */
  readonly storeIds = new Set<number>();
  private counter = 0;
  private readonly constKeys = new Map<string, string>();

  /** A fresh value name. */
  fresh(hint: string): string {
    return `${hint}_${this.counter++}`;
  }

  /** Declares a graph input. */
  input(name: string, elemType: ElemType, dims: readonly Dim[]): Sym {
    this.inputs.push({ name, elemType: dataTypeOf(elemType), dims });
    return new Sym(this, name, elemType, dims);
  }

  /** The value name of `s` in this trace, registering parameters as initializers. */
  use(s: Sym): string {
    if (s.param) {
      const p = s.param;
      if (!this.inits.has(s.name)) {
        checkAlive(p, s.name);
        this.storeIds.add(p.storeId);
        this.inits.set(s.name, {
          name: s.name,
          dataType: DataType.FLOAT,
          dims: p.shape,
          byteLength: p.shape.reduce((a, b) => a * b, 1) * 4,
          bytes: () => bytesOf(paramFloats(p, s.name)),
          floats: () => paramFloats(p, s.name),
          isParam: true,
        });
      }
      return s.name;
    }
    if (s.trace !== this) {
      throw new OnnxBackendError(
        'ONNX_TRACE',
        `symbol "${s.name}" belongs to another graph; symbols cannot cross traces`,
      );
    }
    return s.name;
  }

  /** A 2-D parameter stored transposed ([out, in] -> [in, out]) under `${name}.T`. */
  useTransposed(s: Sym): string {
    const p = s.param;
    if (!p || p.shape.length !== 2)
      throw new OnnxBackendError('ONNX_TRACE', `useTransposed needs a 2-D parameter, got "${s.name}"`);
    const name = `${s.name}.T`;
    if (!this.inits.has(name)) {
      checkAlive(p, s.name);
      this.storeIds.add(p.storeId);
      const [r, c] = p.shape as [number, number];
      const floats = () => transpose2d(paramFloats(p, s.name), r, c);
      this.inits.set(name, {
        name,
        dataType: DataType.FLOAT,
        dims: [c, r],
        byteLength: r * c * 4,
        bytes: () => bytesOf(floats()),
        floats,
        isParam: true,
      });
    }
    return name;
  }

  /** A deduplicated constant initializer. */
  constant(
    hint: string,
    dataType: DataTypeCode,
    dims: readonly number[],
    data: Float32Array | BigInt64Array,
  ): string {
    const key = `${dataType}|${dims.join(',')}|${Array.from(data as ArrayLike<number | bigint>, String).join(',')}`;
    const known = this.constKeys.get(key);
    if (known) return known;
    const name = this.fresh(hint);
    const copy = data.slice();
    this.inits.set(name, {
      name,
      dataType,
      dims,
      byteLength: copy.byteLength,
      bytes: () => bytesOf(copy),
      isParam: false,
    });
    this.constKeys.set(key, name);
    return name;
  }

  /** An int64 vector constant. */
  int64s(values: readonly number[], hint = 'i64'): string {
    return this.constant(
      hint,
      DataType.INT64,
      [values.length],
      BigInt64Array.from(values, (v) => BigInt(v)),
    );
  }

  /** A float32 scalar constant. */
  float(value: number): string {
    return this.constant('f', DataType.FLOAT, [], Float32Array.of(value));
  }

  /** Appends a node and returns its (single) output symbol. */
  node(
    op: string,
    inputs: readonly (Sym | string)[],
    elemType: ElemType,
    dims: readonly Dim[],
    attrs?: Record<string, AttrDef>,
    domain?: string,
  ): Sym {
    const out = this.fresh(op);
    this.nodes.push({
      op,
      inputs: inputs.map((i) => (typeof i === 'string' ? i : this.use(i))),
      outputs: [out],
      name: `${op}/${out}`,
      domain,
      attrs,
    });
    return new Sym(this, out, elemType, dims);
  }

  /** Initializers as TensorDefs with inline data (materializes every payload). */
  tensorDefs(): TensorDef[] {
    return [...this.inits.values()].map((i) => ({
      name: i.name,
      dataType: i.dataType,
      dims: i.dims,
      data: i.bytes(),
    }));
  }
}
