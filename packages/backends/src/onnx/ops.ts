import type { Ops } from '@qf/core';
import { addDims, axisOf, broadcastDims, matmulDims, reduceDims, reshapeDims, sliceDim } from './dims.js';
import { OnnxBackendError } from './errors.js';
import { DataType, type Dim, attr } from './proto.js';
import { type ElemType, Sym, type Trace } from './trace.js';

const INT64_MAX = Number.MAX_SAFE_INTEGER;

/**
 * The @qf/core op interface as an ONNX recorder (opset 17): every call appends nodes to the trace
 * returned by `current()` and returns a symbol. The graph is written so that ONNX Runtime's optimizer
 * fuses it: `linear` is MatMul (weight pre-transposed) + Add, `layerNorm` is LayerNormalization,
 * `gelu` is the Div/Erf/Add/Mul/Mul pattern that becomes Gelu or BiasGelu, `softmax` is Softmax.
 */
export function onnxOps(name: string, current: () => Trace): Ops<Sym> {
  const t = () => current();
  const unary = (op: string) => (x: Sym) => t().node(op, [x], x.elemType, x.dims);
  const binary = (op: string) => (a: Sym, b: Sym) => {
    const elemType: ElemType = a.elemType === 'float32' || b.elemType === 'float32' ? 'float32' : 'int64';
    return t().node(op, [asType(a, elemType), asType(b, elemType)], elemType, broadcastDims(a.dims, b.dims));
  };
  const asType = (x: Sym, e: ElemType): Sym =>
    x.elemType === e
      ? x
      : t().node('Cast', [x], e, x.dims, { to: attr.int(e === 'float32' ? DataType.FLOAT : DataType.INT64) });

  const reduce =
    (op: string, axesAsInput: boolean) =>
    (x: Sym, axis: number, keepDims = false) => {
      const a = axisOf(x.rank, axis);
      const dims = reduceDims(x.dims, a, keepDims);
      const keep = { keepdims: attr.int(keepDims ? 1 : 0) };
      if (axesAsInput) return t().node(op, [x, t().int64s([a])], x.elemType, dims, keep);
      return t().node(op, [x], x.elemType, dims, { ...keep, axes: attr.ints([a]) });
    };

  const matmul = (a: Sym, b: Sym, transposeB = false): Sym => {
    let bb = b;
    if (transposeB) {
      const perm = [...Array(b.rank).keys()];
      [perm[b.rank - 1], perm[b.rank - 2]] = [b.rank - 2, b.rank - 1];
      bb = t().node(
        'Transpose',
        [b],
        b.elemType,
        perm.map((p) => b.dims[p] as Dim),
        { perm: attr.ints(perm) },
      );
    }
    return t().node('MatMul', [a, bb], 'float32', matmulDims(a.dims, b.dims, transposeB));
  };

  return {
    name,
    constant: (data, shape) => {
      const tr = t();
      if (data instanceof Int32Array) {
        const n = tr.constant(
          'ci',
          DataType.INT64,
          shape,
          BigInt64Array.from(data, (v) => BigInt(v)),
        );
        return new Sym(tr, n, 'int64', shape);
      }
      return new Sym(tr, tr.constant('cf', DataType.FLOAT, shape, data), 'float32', shape);
    },
    scalar: (v) => new Sym(t(), t().float(v), 'float32', []),

    reshape: (x, shape) =>
      t().node('Reshape', [x, t().int64s(shape)], x.elemType, reshapeDims(x.dims, shape)),
    transpose: (x, perm) =>
      t().node(
        'Transpose',
        [x],
        x.elemType,
        perm.map((p) => x.dims[p] as Dim),
        { perm: attr.ints(perm) },
      ),
    concat: (xs, axis) => {
      const first = xs[0];
      if (!first) throw new OnnxBackendError('ONNX_TRACE', 'concat of no tensors');
      const a = axisOf(first.rank, axis);
      const dims = first.dims.map((d, i) =>
        i === a ? xs.slice(1).reduce<Dim>((s, x) => addDims(s, x.dims[a] ?? null), d) : d,
      );
      return t().node('Concat', xs, first.elemType, dims, { axis: attr.int(a) });
    },
    slice: (x, axis, start, end) => {
      const a = axisOf(x.rank, axis);
      const tr = t();
      const dims = x.dims.map((d, i) => (i === a ? sliceDim(d, start, end) : d));
      return tr.node(
        'Slice',
        [x, tr.int64s([start]), tr.int64s([end ?? INT64_MAX]), tr.int64s([a])],
        x.elemType,
        dims,
      );
    },
    gather: (table, ids) =>
      t().node(
        'Gather',
        [table, asType(ids, 'int64')],
        table.elemType,
        [...ids.dims, ...table.dims.slice(1)],
        { axis: attr.int(0) },
      ),
    expandBatch: (x, like) => {
      const tr = t();
      const batch = tr.node('Shape', [like], 'int64', [1], { start: attr.int(0), end: attr.int(1) });
      const target =
        x.rank > 1
          ? tr.node('Concat', [batch, tr.int64s(Array(x.rank - 1).fill(1))], 'int64', [x.rank], {
              axis: attr.int(0),
            })
          : batch;
      return tr.node('Expand', [x, target], x.elemType, [like.dims[0] ?? null, ...x.dims.slice(1)]);
    },
    range: (like, axis) => {
      const tr = t();
      const a = axisOf(like.rank, axis);
      const n = tr.node('Shape', [like], 'int64', [1], { start: attr.int(a), end: attr.int(a + 1) });
      const limit = tr.node('Squeeze', [n, tr.int64s([0])], 'int64', []);
      const zero = tr.constant('zero', DataType.INT64, [], BigInt64Array.of(0n));
      const one = tr.constant('one', DataType.INT64, [], BigInt64Array.of(1n));
      return tr.node('Range', [zero, limit, one], 'int64', [like.dims[a] ?? null]);
    },

    add: binary('Add'),
    sub: binary('Sub'),
    mul: binary('Mul'),
    div: binary('Div'),
    maximum: binary('Max'),
    minimum: binary('Min'),
    sqrt: unary('Sqrt'),
    exp: unary('Exp'),
    log: unary('Log'),
    tanh: unary('Tanh'),
    relu: unary('Relu'),
    gelu: (x) => {
      // 0.5 * x * (1 + erf(x / sqrt 2)) in the form ORT's GeluFusion / BiasGeluFusion match.
      const tr = t();
      const erf = tr.node(
        'Erf',
        [tr.node('Div', [x, tr.float(Math.SQRT2)], 'float32', x.dims)],
        'float32',
        x.dims,
      );
      const onePlus = tr.node('Add', [erf, tr.float(1)], 'float32', x.dims);
      return tr.node(
        'Mul',
        [tr.node('Mul', [x, onePlus], 'float32', x.dims), tr.float(0.5)],
        'float32',
        x.dims,
      );
    },
    toFloat: (x) => asType(x, 'float32'),

    sum: reduce('ReduceSum', true),
    mean: reduce('ReduceMean', false),
    max: reduce('ReduceMax', false),

    matmul,
    linear: (x, weight, bias) => {
      const tr = t();
      const outF = weight.dims[0] ?? null;
      const dims = [...x.dims.slice(0, -1), outF];
      // Parameters are stored pre-transposed ([in, out]) so the graph is a plain MatMul (+ Add).
      const y = weight.param
        ? tr.node('MatMul', [x, tr.useTransposed(weight)], 'float32', dims)
        : matmul(x, weight, true);
      return bias ? tr.node('Add', [y, bias], 'float32', dims) : y;
    },
    softmax: (x) => t().node('Softmax', [x], x.elemType, x.dims, { axis: attr.int(-1) }),
    layerNorm: (x, gamma, beta, eps) =>
      t().node('LayerNormalization', [x, gamma, beta], 'float32', x.dims, {
        axis: attr.int(-1),
        epsilon: attr.float(eps),
      }),
  };
}
