import { f32ArrayToF16 } from '@qf/io';
import { consumers, type GraphParts, pruneInits } from './fuse.js';
import { DataType, type NodeDef } from './proto.js';
import type { InitSource } from './trace.js';

/**
 * How parameters are stored in a graph:
 * - `float32`: as recorded;
 * - `float16`: every float parameter stored as float16 and Cast to float32 at load (half the file
 *   size; ONNX Runtime folds the Casts, so compute stays float32);
 * - `int8`: every MatMul by a parameter becomes `com.microsoft.DynamicQuantizeMatMul` with int8
 *   weights quantized per output column (symmetric) and the bias Add folded in; activations are
 *   quantized per call by ONNX Runtime. ONNX Runtime only (contrib op).
 */
export type WeightFormat = 'float32' | 'float16' | 'int8';

/** Stores float parameters as float16 behind Cast nodes. */
export function toFloat16Weights(g: GraphParts): GraphParts {
  const inits = new Map<string, InitSource>();
  const casts: NodeDef[] = [];
  for (const [name, init] of g.inits) {
    if (!init.isParam || init.dataType !== DataType.FLOAT || !init.floats) {
      inits.set(name, init);
      continue;
    }
    const stored = `${name}::f16`;
    const floats = init.floats;
    inits.set(stored, {
      name: stored,
      dataType: DataType.FLOAT16,
      dims: init.dims,
      byteLength: init.byteLength / 2,
      bytes: () => {
        const h = f32ArrayToF16(floats());
        return new Uint8Array(h.buffer, h.byteOffset, h.byteLength);
      },
      isParam: true,
    });
    casts.push({
      op: 'Cast',
      inputs: [stored],
      outputs: [name],
      name: `Cast/${name}`,
      attrs: { to: { kind: 'int', value: DataType.FLOAT } },
    });
  }
  return { nodes: [...casts, ...g.nodes], inits, outputs: g.outputs };
}

/** Per-column symmetric int8 quantization of a [K, N] matrix. */
export function quantizeColumns(
  w: Float32Array,
  k: number,
  n: number,
): { q: Int8Array; scale: Float32Array } {
  const scale = new Float32Array(n);
  for (let r = 0; r < k; r++) {
    for (let c = 0; c < n; c++) {
      const a = Math.abs(w[r * n + c] as number);
      if (a > (scale[c] as number)) scale[c] = a;
    }
  }
  for (let c = 0; c < n; c++) scale[c] = (scale[c] as number) > 0 ? (scale[c] as number) / 127 : 1;
  const q = new Int8Array(k * n);
  for (let r = 0; r < k; r++) {
    for (let c = 0; c < n; c++)
      q[r * n + c] = Math.max(
        -127,
        Math.min(127, Math.round((w[r * n + c] as number) / (scale[c] as number))),
      );
  }
  return { q, scale };
}

/** Replaces MatMul-by-parameter (+ bias Add) with DynamicQuantizeMatMul on int8 weights. */
export function toInt8MatMuls(g: GraphParts): GraphParts {
  const users = consumers(g.nodes);
  const inits = new Map(g.inits);
  const drop = new Set<NodeDef>();
  const replace = new Map<NodeDef, NodeDef>();
  for (const n of g.nodes) {
    if (n.op !== 'MatMul' || n.domain) continue;
    const w = g.inits.get(n.inputs[1] ?? '');
    if (!w?.isParam || w.dims.length !== 2 || !w.floats) continue;
    const [k, cols] = w.dims as [number, number];
    const out = n.outputs[0] as string;
    const u = users.get(out);
    const add =
      u?.length === 1 && !g.outputs.has(out) && u[0]?.op === 'Add' && u[0].inputs[0] === out
        ? u[0]
        : undefined;
    const bias = add ? g.inits.get(add.inputs[1] ?? '') : undefined;
    const fold = add && bias?.isParam && bias.dims.length === 1 && bias.dims[0] === cols;
    const floats = w.floats;
    let cached: { q: Int8Array; scale: Float32Array } | undefined;
    const quant = () => {
      cached ??= quantizeColumns(floats(), k, cols);
      return cached;
    };
    const qName = `${w.name}::int8`;
    const sName = `${w.name}::scale`;
    const zName = `${w.name}::zero_point`;
    inits.set(qName, {
      name: qName,
      dataType: DataType.INT8,
      dims: [k, cols],
      byteLength: k * cols,
      bytes: () => new Uint8Array(quant().q.buffer),
      isParam: true,
    });
    inits.set(sName, {
      name: sName,
      dataType: DataType.FLOAT,
      dims: [cols],
      byteLength: cols * 4,
      bytes: () => new Uint8Array(quant().scale.buffer),
      isParam: true,
    });
    inits.set(zName, {
      name: zName,
      dataType: DataType.INT8,
      dims: [cols],
      byteLength: cols,
      bytes: () => new Uint8Array(cols),
      isParam: false,
    });
    const inputs = [
      n.inputs[0] as string,
      qName,
      sName,
      zName,
      ...(fold && add ? [add.inputs[1] as string] : []),
    ];
    const output = fold && add ? (add.outputs[0] as string) : out;
    replace.set(n, {
      op: 'DynamicQuantizeMatMul',
      domain: 'com.microsoft',
      inputs,
      outputs: [output],
      name: `DynamicQuantizeMatMul/${output}`,
    });
    if (fold && add) drop.add(add);
  }
  const nodes = g.nodes.filter((n) => !drop.has(n)).map((n) => replace.get(n) ?? n);
  return { nodes, inits: pruneInits(nodes, inits), outputs: g.outputs };
}
