import { DataType, type NodeDef, attr } from './proto.js';
import type { InitSource } from './trace.js';

/** A graph under rewriting: nodes in order, initializers by name, and the graph output names. */
export interface GraphParts {
  nodes: NodeDef[];
  inits: Map<string, InitSource>;
  readonly outputs: ReadonlySet<string>;
}

/** Value name -> the nodes that read it. */
export function consumers(nodes: readonly NodeDef[]): Map<string, NodeDef[]> {
  const m = new Map<string, NodeDef[]>();
  for (const n of nodes) {
    for (const i of n.inputs) {
      const list = m.get(i);
      if (list) list.push(n);
      else m.set(i, [n]);
    }
  }
  return m;
}

interface LinearMatch {
  readonly matmul: NodeDef;
  readonly add: NodeDef;
  readonly weight: InitSource; // [in, out]
  readonly bias: InitSource; // [out]
}

/** A MatMul by a parameter followed by its only consumer, an Add of a parameter bias. */
function matchLinear(n: NodeDef, g: GraphParts, users: Map<string, NodeDef[]>): LinearMatch | undefined {
  if (n.op !== 'MatMul' || n.domain) return undefined;
  const weight = g.inits.get(n.inputs[1] ?? '');
  if (!weight?.isParam || weight.dims.length !== 2 || !weight.floats) return undefined;
  const out = n.outputs[0] as string;
  const u = users.get(out);
  if (!u || u.length !== 1 || g.outputs.has(out)) return undefined;
  const add = u[0] as NodeDef;
  if (add.op !== 'Add' || add.inputs[0] !== out) return undefined;
  const bias = g.inits.get(add.inputs[1] ?? '');
  if (!bias?.isParam || bias.dims.length !== 1 || bias.dims[0] !== weight.dims[1] || !bias.floats)
    return undefined;
  return { matmul: n, add, weight, bias };
}

function concatColumns(parts: readonly Float32Array[], rows: number, cols: readonly number[]): Float32Array {
  const total = cols.reduce((a, b) => a + b, 0);
  const out = new Float32Array(rows * total);
  let off = 0;
  parts.forEach((p, k) => {
    const c = cols[k] as number;
    for (let r = 0; r < rows; r++) out.set(p.subarray(r * c, (r + 1) * c), r * total + off);
    off += c;
  });
  return out;
}

/**
 * Sibling-linear fusion: linears that read the same tensor (Q/K/V of self-attention, K/V of
 * cross-attention) become one MatMul + Add on concatenated weights, then a Split. Same math, fewer
 * and larger GEMMs. Runs on the recorded graph, so model code is unchanged.
 */
export function fuseSiblingLinears(g: GraphParts): GraphParts {
  const users = consumers(g.nodes);
  const groups = new Map<string, LinearMatch[]>();
  for (const n of g.nodes) {
    const m = matchLinear(n, g, users);
    if (!m) continue;
    const key = n.inputs[0] as string;
    const list = groups.get(key);
    if (list) list.push(m);
    else groups.set(key, [m]);
  }
  const replaced = new Map<NodeDef, NodeDef[]>(); // first MatMul -> fused nodes
  const dropped = new Set<NodeDef>();
  const inits = new Map(g.inits);
  let k = 0;
  for (const [x, group] of groups) {
    if (group.length < 2) continue;
    const rows = group[0]?.weight.dims[0] as number;
    if (group.some((m) => m.weight.dims[0] !== rows)) continue;
    const cols = group.map((m) => m.weight.dims[1] as number);
    const total = cols.reduce((a, b) => a + b, 0);
    const wName = `fused${k}.weight:${group.map((m) => m.weight.name).join('|')}`;
    const bName = `fused${k}.bias:${group.map((m) => m.bias.name).join('|')}`;
    const splitName = `fused${k}.split`;
    const wFloats = () =>
      concatColumns(
        group.map((m) => (m.weight.floats as () => Float32Array)()),
        rows,
        cols,
      );
    const bFloats = () =>
      concatColumns(
        group.map((m) => (m.bias.floats as () => Float32Array)()),
        1,
        cols,
      );
    inits.set(wName, floatInit(wName, [rows, total], wFloats));
    inits.set(bName, floatInit(bName, [total], bFloats));
    const split = BigInt64Array.from(cols, (c) => BigInt(c));
    inits.set(splitName, {
      name: splitName,
      dataType: DataType.INT64,
      dims: [cols.length],
      byteLength: split.byteLength,
      bytes: () => new Uint8Array(split.buffer),
      isParam: false,
    });
    const mm = `fused${k}.matmul`;
    const ad = `fused${k}.add`;
    const fused: NodeDef[] = [
      { op: 'MatMul', inputs: [x, wName], outputs: [mm], name: `MatMul/${mm}` },
      { op: 'Add', inputs: [mm, bName], outputs: [ad], name: `Add/${ad}` },
      {
        op: 'Split',
        inputs: [ad, splitName],
        outputs: group.map((m) => m.add.outputs[0] as string),
        name: `Split/fused${k}`,
        attrs: { axis: attr.int(-1) },
      },
    ];
    replaced.set(group[0]?.matmul as NodeDef, fused);
    for (const m of group) {
      dropped.add(m.matmul);
      dropped.add(m.add);
    }
    k++;
  }
  if (k === 0) return g;
  const nodes: NodeDef[] = [];
  for (const n of g.nodes) {
    const r = replaced.get(n);
    if (r) nodes.push(...r);
    else if (!dropped.has(n)) nodes.push(n);
  }
  return { nodes, inits: pruneInits(nodes, inits), outputs: g.outputs };
}

/** A float32 initializer whose values are computed when encoded. */
export function floatInit(name: string, dims: readonly number[], floats: () => Float32Array): InitSource {
  return {
    name,
    dataType: DataType.FLOAT,
    dims,
    byteLength: dims.reduce((a, b) => a * b, 1) * 4,
    bytes: () => {
      const f = floats();
      return new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
    },
    floats,
    isParam: true,
  };
}

/** Drops initializers no node reads. */
export function pruneInits(
  nodes: readonly NodeDef[],
  inits: Map<string, InitSource>,
): Map<string, InitSource> {
  const used = new Set<string>();
  for (const n of nodes) for (const i of n.inputs) used.add(i);
  return new Map([...inits].filter(([name]) => used.has(name)));
}
