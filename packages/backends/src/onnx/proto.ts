import protobuf from 'protobufjs/minimal.js';

/**
 * A small, typed description of an ONNX model and its protobuf encoding (onnx.proto, IR 8+).
 * Small messages are written with protobufjs' `Writer`; tensor payloads are never copied into the
 * writer: the encoder returns a list of byte parts that reference them, so a model can be streamed
 * to disk (or concatenated once) without holding two copies of its weights.
 */

/** ONNX `TensorProto.DataType` values used here. */
export const DataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
  FLOAT16: 10,
} as const;
export type DataTypeCode = (typeof DataType)[keyof typeof DataType];

/** One dimension of a declared shape: a size, a symbolic name, or unknown (`null`). */
export type Dim = number | string | null;

/** Bytes produced on demand (e.g. a weight transposed only while it is written). */
export interface LazyBytes {
  readonly byteLength: number;
  bytes(): Uint8Array;
}

/** A part of an encoded model: bytes, or a payload to produce when writing. */
export type Part = Uint8Array | LazyBytes;

/** An initializer (or a constant tensor attribute). `data` is little-endian raw bytes. */
export interface TensorDef {
  readonly name: string;
  readonly dataType: DataTypeCode;
  readonly dims: readonly number[];
  /** Raw little-endian bytes (`raw_data`; lazy only for initializers), or undefined when external. */
  readonly data?: Uint8Array | LazyBytes | undefined;
  /** External storage (`data_location = EXTERNAL`). */
  readonly external?:
    | { readonly location: string; readonly offset: number; readonly length: number }
    | undefined;
}

/** A node attribute. */
export type AttrDef =
  | { readonly kind: 'int'; readonly value: number }
  | { readonly kind: 'float'; readonly value: number }
  | { readonly kind: 'string'; readonly value: string }
  | { readonly kind: 'ints'; readonly value: readonly number[] }
  | { readonly kind: 'tensor'; readonly value: TensorDef };

/** A graph node. */
export interface NodeDef {
  readonly op: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly name: string;
  readonly domain?: string | undefined;
  readonly attrs?: Readonly<Record<string, AttrDef>> | undefined;
}

/** A typed graph input or output. */
export interface ValueInfoDef {
  readonly name: string;
  readonly elemType: DataTypeCode;
  readonly dims: readonly Dim[];
  readonly doc?: string | undefined;
}

/** A whole model. */
export interface ModelDef {
  readonly irVersion: number;
  readonly opsets: readonly { readonly domain: string; readonly version: number }[];
  readonly producerName: string;
  readonly producerVersion: string;
  readonly doc?: string | undefined;
  readonly graph: {
    readonly name: string;
    readonly nodes: readonly NodeDef[];
    readonly initializers: readonly TensorDef[];
    readonly inputs: readonly ValueInfoDef[];
    readonly outputs: readonly ValueInfoDef[];
  };
  readonly metadata?: Readonly<Record<string, string>> | undefined;
}

/** Attribute constructors. */
export const attr = {
  int: (value: number): AttrDef => ({ kind: 'int', value }),
  float: (value: number): AttrDef => ({ kind: 'float', value }),
  string: (value: string): AttrDef => ({ kind: 'string', value }),
  ints: (value: readonly number[]): AttrDef => ({ kind: 'ints', value }),
  tensor: (value: TensorDef): AttrDef => ({ kind: 'tensor', value }),
};

type Writer = protobuf.Writer;
const newWriter = (): Writer => protobuf.Writer.create();
const LEN = 2;
const VARINT = 0;
const I32 = 5;
const tag = (field: number, wire: number) => (field << 3) | wire;

function writeKeyValue(w: Writer, field: number, key: string, value: string): void {
  w.uint32(tag(field, LEN)).fork().uint32(tag(1, LEN)).string(key).uint32(tag(2, LEN)).string(value).ldelim();
}

/** TensorProto without `raw_data` (fields 1, 2, 8, 13, 14). */
function writeTensorHeader(w: Writer, t: TensorDef): void {
  for (const d of t.dims) w.uint32(tag(1, VARINT)).int64(d);
  w.uint32(tag(2, VARINT)).int32(t.dataType);
  w.uint32(tag(8, LEN)).string(t.name);
  if (t.external) {
    writeKeyValue(w, 13, 'location', t.external.location);
    writeKeyValue(w, 13, 'offset', String(t.external.offset));
    writeKeyValue(w, 13, 'length', String(t.external.length));
    w.uint32(tag(14, VARINT)).int32(1);
  }
}

function writeTensor(w: Writer, t: TensorDef): void {
  writeTensorHeader(w, t);
  if (t.data instanceof Uint8Array) w.uint32(tag(9, LEN)).bytes(t.data);
}

function writeAttr(w: Writer, name: string, a: AttrDef): void {
  w.uint32(tag(1, LEN)).string(name);
  switch (a.kind) {
    case 'float':
      w.uint32(tag(2, I32)).float(a.value).uint32(tag(20, VARINT)).int32(1);
      return;
    case 'int':
      w.uint32(tag(3, VARINT)).int64(a.value).uint32(tag(20, VARINT)).int32(2);
      return;
    case 'string':
      w.uint32(tag(4, LEN)).bytes(new TextEncoder().encode(a.value)).uint32(tag(20, VARINT)).int32(3);
      return;
    case 'tensor':
      w.uint32(tag(5, LEN)).fork();
      writeTensor(w, a.value);
      w.ldelim().uint32(tag(20, VARINT)).int32(4);
      return;
    case 'ints':
      for (const v of a.value) w.uint32(tag(8, VARINT)).int64(v);
      w.uint32(tag(20, VARINT)).int32(7);
      return;
  }
}

function writeNode(w: Writer, n: NodeDef): void {
  for (const i of n.inputs) w.uint32(tag(1, LEN)).string(i);
  for (const o of n.outputs) w.uint32(tag(2, LEN)).string(o);
  w.uint32(tag(3, LEN)).string(n.name);
  w.uint32(tag(4, LEN)).string(n.op);
  for (const [name, a] of Object.entries(n.attrs ?? {})) {
    w.uint32(tag(5, LEN)).fork();
    writeAttr(w, name, a);
    w.ldelim();
  }
  if (n.domain) w.uint32(tag(7, LEN)).string(n.domain);
}

function writeValueInfo(w: Writer, v: ValueInfoDef): void {
  w.uint32(tag(1, LEN)).string(v.name);
  w.uint32(tag(2, LEN)).fork(); // TypeProto
  w.uint32(tag(1, LEN)).fork(); // TypeProto.Tensor
  w.uint32(tag(1, VARINT)).int32(v.elemType);
  w.uint32(tag(2, LEN)).fork(); // TensorShapeProto
  for (const d of v.dims) {
    w.uint32(tag(1, LEN)).fork();
    if (typeof d === 'number') w.uint32(tag(1, VARINT)).int64(d);
    else if (typeof d === 'string') w.uint32(tag(2, LEN)).string(d);
    w.ldelim();
  }
  w.ldelim().ldelim().ldelim();
  if (v.doc) w.uint32(tag(3, LEN)).string(v.doc);
}

function varintBytes(n: number): Uint8Array {
  return newWriter().uint32(n).finish();
}

const partLength = (p: Part) => (p instanceof Uint8Array ? p.length : p.byteLength);

/**
 * Encodes a model as a list of parts whose concatenation is the serialized `ModelProto`.
 * Initializer payloads appear in the list as given (arrays not copied, lazy payloads not produced).
 */
export function encodeModelParts(model: ModelDef): Part[] {
  const g = model.graph;
  const graphParts: Part[] = [];
  const nodesW = newWriter();
  for (const n of g.nodes) {
    nodesW.uint32(tag(1, LEN)).fork();
    writeNode(nodesW, n);
    nodesW.ldelim();
  }
  nodesW.uint32(tag(2, LEN)).string(g.name);
  graphParts.push(nodesW.finish());
  for (const t of g.initializers) {
    const head = newWriter();
    writeTensorHeader(head, t);
    const headBytes = head.finish();
    const payload = t.data;
    const payloadTag = payload
      ? newWriter().uint32(tag(9, LEN)).uint32(partLength(payload)).finish()
      : new Uint8Array(0);
    const msgLen = headBytes.length + payloadTag.length + (payload ? partLength(payload) : 0);
    graphParts.push(newWriter().uint32(tag(5, LEN)).uint32(msgLen).finish(), headBytes, payloadTag);
    if (payload && partLength(payload) > 0) graphParts.push(payload);
  }
  const ioW = newWriter();
  for (const [field, list] of [
    [11, g.inputs],
    [12, g.outputs],
  ] as const) {
    for (const v of list) {
      ioW.uint32(tag(field, LEN)).fork();
      writeValueInfo(ioW, v);
      ioW.ldelim();
    }
  }
  graphParts.push(ioW.finish());
  const graphLen = graphParts.reduce((s, p) => s + partLength(p), 0);

  const head = newWriter();
  head.uint32(tag(1, VARINT)).int64(model.irVersion);
  head.uint32(tag(2, LEN)).string(model.producerName);
  head.uint32(tag(3, LEN)).string(model.producerVersion);
  if (model.doc) head.uint32(tag(6, LEN)).string(model.doc);
  head.uint32(tag(7, LEN));
  const tail = newWriter();
  for (const o of model.opsets) {
    tail
      .uint32(tag(8, LEN))
      .fork()
      .uint32(tag(1, LEN))
      .string(o.domain)
      .uint32(tag(2, VARINT))
      .int64(o.version)
      .ldelim();
  }
  for (const [k, v] of Object.entries(model.metadata ?? {})) writeKeyValue(tail, 14, k, v);
  return [head.finish(), varintBytes(graphLen), ...graphParts, tail.finish()];
}

/**
 * Concatenates parts into one array, producing lazy payloads one at a time (so at most one
 * transient payload is alive besides the result).
 */
export function concatParts(parts: readonly Part[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + partLength(p), 0));
  let off = 0;
  for (const p of parts) {
    const bytes = p instanceof Uint8Array ? p : p.bytes();
    if (bytes.length !== partLength(p))
      throw new RangeError(`payload of ${partLength(p)} bytes produced ${bytes.length}`);
    out.set(bytes, off);
    off += bytes.length;
  }
  return out;
}

/** Serializes a model into one `ModelProto` byte array. */
export function encodeModel(model: ModelDef): Uint8Array {
  return concatParts(encodeModelParts(model));
}

/** Little-endian bytes of a typed array (a view, no copy, on little-endian hosts). */
export function bytesOf(
  a: Float32Array | Int32Array | BigInt64Array | Uint16Array | Uint8Array | Int8Array,
): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}
