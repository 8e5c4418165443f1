import { OnnxBackendError } from './errors.js';
import { fuseSiblingLinears, type GraphParts, pruneInits } from './fuse.js';
import {
  type ModelDef,
  type NodeDef,
  type TensorDef,
  type ValueInfoDef,
  concatParts,
  encodeModelParts,
  type Part,
} from './proto.js';
import type { Recording } from './record.js';
import { type InitSource, dataTypeOf } from './trace.js';
import { type WeightFormat, toFloat16Weights, toInt8MatMuls } from './weights.js';

/** ONNX opset of the default domain used by recorded graphs. */
export const OPSET = 17;
/** IR version matching {@link OPSET}. */
export const IR_VERSION = 8;
/** protobuf's hard limit on one message: models past it need external data. */
export const PROTOBUF_LIMIT = 2 ** 31 - 1;

/** Options of {@link buildGraph}. */
export interface BuildOptions {
  /** Fuse linears that read the same tensor (Q/K/V, cross-attention K/V) into one MatMul. Default true. */
  readonly fuseLinears?: boolean;
  /** How parameters are stored (default float32). */
  readonly weights?: WeightFormat;
  readonly graphName?: string;
  readonly doc?: string;
  readonly metadata?: Readonly<Record<string, string>>;
  /** Keep only these outputs (and the nodes they need); default: every recorded output. */
  readonly outputs?: readonly string[];
  /** Doc strings of inputs and outputs, by name. */
  readonly docs?: Readonly<Record<string, string>>;
}

/** A graph ready to encode: initializer payloads are still lazy. */
export interface BuiltGraph {
  readonly name: string;
  readonly nodes: readonly NodeDef[];
  readonly inits: readonly InitSource[];
  readonly inputs: readonly ValueInfoDef[];
  readonly outputs: readonly ValueInfoDef[];
  readonly opsets: readonly { readonly domain: string; readonly version: number }[];
  readonly doc?: string | undefined;
  readonly metadata?: Readonly<Record<string, string>> | undefined;
  /** Total initializer bytes. */
  readonly byteLength: number;
}

/** Turns a recording into a graph: output Identity nodes, optional fusion and weight formats. */
export function buildGraph(rec: Recording, options: BuildOptions = {}): BuiltGraph {
  const nodes = [...rec.trace.nodes];
  const outputs: ValueInfoDef[] = [];
  const wanted = options.outputs ? new Set(options.outputs) : undefined;
  for (const [name, sym] of Object.entries(rec.outputs)) {
    if (wanted && !wanted.has(name)) continue;
    if (!sym || typeof sym !== 'object' || !('elemType' in sym)) {
      throw new OnnxBackendError('ONNX_TRACE', `output "${name}" is not a symbol of this graph`);
    }
    nodes.push({ op: 'Identity', inputs: [rec.trace.use(sym)], outputs: [name], name: `Identity/${name}` });
    outputs.push({ name, elemType: dataTypeOf(sym.elemType), dims: sym.dims, doc: options.docs?.[name] });
  }
  const live = liveNodes(
    nodes,
    outputs.map((o) => o.name),
  );
  let g: GraphParts = {
    nodes: live,
    inits: pruneInits(live, new Map(rec.trace.inits)),
    outputs: new Set(outputs.map((o) => o.name)),
  };
  if (options.fuseLinears ?? true) g = fuseSiblingLinears(g);
  const weights = options.weights ?? 'float32';
  if (weights === 'int8') g = toInt8MatMuls(g);
  if (weights === 'float16') g = toFloat16Weights(g);
  const inits = [...g.inits.values()];
  const contrib = g.nodes.some((n) => n.domain === 'com.microsoft');
  return {
    name: options.graphName ?? 'qformer',
    nodes: g.nodes,
    inits,
    inputs: rec.trace.inputs.map((i) => ({ ...i, doc: options.docs?.[i.name] })),
    outputs,
    opsets: [{ domain: '', version: OPSET }, ...(contrib ? [{ domain: 'com.microsoft', version: 1 }] : [])],
    doc: options.doc,
    metadata: options.metadata,
    byteLength: inits.reduce((s, i) => s + i.byteLength, 0),
  };
}

/** The nodes that the named outputs depend on, in their original order. */
function liveNodes(nodes: readonly NodeDef[], outputs: readonly string[]): NodeDef[] {
  const producer = new Map<string, NodeDef>();
  for (const n of nodes) for (const o of n.outputs) producer.set(o, n);
  const keep = new Set<NodeDef>();
  const stack = [...outputs];
  while (stack.length > 0) {
    const n = producer.get(stack.pop() as string);
    if (!n || keep.has(n)) continue;
    keep.add(n);
    stack.push(...n.inputs);
  }
  return nodes.filter((n) => keep.has(n));
}

function modelDef(g: BuiltGraph, tensors: TensorDef[]): ModelDef {
  return {
    irVersion: IR_VERSION,
    opsets: g.opsets,
    producerName: 'qformer-ts',
    producerVersion: '0.1.0',
    doc: g.doc,
    graph: { name: g.name, nodes: g.nodes, initializers: tensors, inputs: g.inputs, outputs: g.outputs },
    metadata: g.metadata,
  };
}

/** Encodes a graph with every initializer inline, as parts (payloads produced when written). */
export function encodeModelPartsInline(g: BuiltGraph): Part[] {
  if (g.byteLength > PROTOBUF_LIMIT - 64 * 2 ** 20) {
    throw new OnnxBackendError(
      'ONNX_EXPORT',
      `graph "${g.name}" holds ${g.byteLength} weight bytes: too large for one protobuf; use external data`,
    );
  }
  return encodeModelParts(
    modelDef(
      g,
      g.inits.map((i) => ({ name: i.name, dataType: i.dataType, dims: i.dims, data: i })),
    ),
  );
}

/** Encodes a graph with every initializer inline into one `.onnx` byte array (below 2 GB). */
export function encodeInline(g: BuiltGraph): Uint8Array {
  return concatParts(encodeModelPartsInline(g));
}

/** A model split into the `.onnx` protobuf and one external data file. */
export interface ExternalLayout {
  /** Parts of the `.onnx` file (small: no weights). */
  readonly modelParts: Part[];
  /** Size of the data file. */
  readonly dataSize: number;
  /** Payloads of the data file at their offsets (computed lazily, one at a time). */
  readonly chunks: readonly { readonly offset: number; readonly length: number; bytes(): Uint8Array }[];
}

/**
 * Lays a graph out with external data: initializers of at least `threshold` bytes go to `location`
 * (relative to the model file); those of at least 1 MiB start at offsets aligned to `align` bytes so
 * ONNX Runtime can memory-map them. Smaller ones stay inline.
 */
export function encodeExternal(
  g: BuiltGraph,
  location: string,
  threshold = 1024,
  align = 65536,
): ExternalLayout {
  const tensors: TensorDef[] = [];
  const chunks: { offset: number; length: number; bytes(): Uint8Array }[] = [];
  let offset = 0;
  for (const i of g.inits) {
    if (i.byteLength < threshold) {
      tensors.push({ name: i.name, dataType: i.dataType, dims: i.dims, data: i.bytes() });
      continue;
    }
    const a = i.byteLength >= 2 ** 20 ? align : 16;
    offset = Math.ceil(offset / a) * a;
    tensors.push({
      name: i.name,
      dataType: i.dataType,
      dims: i.dims,
      external: { location, offset, length: i.byteLength },
    });
    chunks.push({ offset, length: i.byteLength, bytes: () => i.bytes() });
    offset += i.byteLength;
  }
  return { modelParts: encodeModelParts(modelDef(g, tensors)), dataSize: offset, chunks };
}
