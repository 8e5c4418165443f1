import type { Dim } from './proto.js';

/**
 * Best-effort shape inference for the recorder: dimensions are sizes, symbolic names (`batch`,
 * `text_length`, `32+text_length`) or unknown (`null`). Only used to declare output shapes and to
 * check ranks while tracing; ONNX Runtime does its own inference.
 */

/** Positive axis. */
export function axisOf(rank: number, axis: number): number {
  const a = axis < 0 ? rank + axis : axis;
  if (a < 0 || a >= rank) throw new RangeError(`axis ${axis} out of range for rank ${rank}`);
  return a;
}

/** NumPy broadcasting of two shapes. */
export function broadcastDims(a: readonly Dim[], b: readonly Dim[]): Dim[] {
  const n = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const x = i < n - a.length ? 1 : (a[i - (n - a.length)] as Dim);
    const y = i < n - b.length ? 1 : (b[i - (n - b.length)] as Dim);
    if (x === 1) out.push(y);
    else if (y === 1 || x === y) out.push(x);
    else if (typeof x === 'number' && typeof y === 'number')
      throw new RangeError(`cannot broadcast ${x} with ${y}`);
    else out.push(typeof x === 'number' ? x : typeof y === 'number' ? y : null);
  }
  return out;
}

/** Sum of two dims (for concat). */
export function addDims(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') return a + b;
  if (a === null || b === null) return null;
  return `${a}+${b}`;
}

/** Size of `x[start:end]` along a dimension of size `d`. */
export function sliceDim(d: Dim, start: number, end: number | undefined): Dim {
  if (end !== undefined) {
    if (typeof d === 'number') return Math.max(0, Math.min(end, d) - start);
    return end - start;
  }
  if (typeof d === 'number') return Math.max(0, d - start);
  if (start === 0) return d;
  if (typeof d === 'string' && d.startsWith(`${start}+`)) return d.slice(`${start}+`.length);
  return null;
}

function factor(dims: readonly Dim[]): { n: number; syms: string[]; unknown: boolean } {
  let n = 1;
  const syms: string[] = [];
  let unknown = false;
  for (const d of dims) {
    if (typeof d === 'number') n *= d;
    else if (d === null) unknown = true;
    else syms.push(d);
  }
  return { n, syms, unknown };
}

/** Output dims of an ONNX Reshape (`0` copies, `-1` infers). */
export function reshapeDims(input: readonly Dim[], target: readonly number[]): Dim[] {
  const out: Dim[] = target.map((t, i) => (t === 0 ? (input[i] ?? null) : t === -1 ? null : t));
  const inferAt = target.indexOf(-1);
  if (inferAt < 0) return out;
  const inF = factor(input);
  const outF = factor(out.filter((_, i) => i !== inferAt));
  if (inF.unknown || outF.unknown) return out;
  const rest = [...inF.syms];
  for (const s of outF.syms) {
    const k = rest.indexOf(s);
    if (k < 0) return out;
    rest.splice(k, 1);
  }
  if (inF.n % outF.n !== 0) return out;
  const n = inF.n / outF.n;
  if (rest.length === 0) out[inferAt] = n;
  else if (rest.length === 1 && n === 1) out[inferAt] = rest[0] as string;
  return out;
}

/** Output dims of a reduction over `axis`. */
export function reduceDims(input: readonly Dim[], axis: number, keepDims: boolean): Dim[] {
  const a = axisOf(input.length, axis);
  return keepDims ? input.map((d, i) => (i === a ? 1 : d)) : input.filter((_, i) => i !== a);
}

/** Output dims of a batched matmul `a @ b` (b transposed over its last two axes when asked). */
export function matmulDims(a: readonly Dim[], b: readonly Dim[], transposeB: boolean): Dim[] {
  if (a.length < 2 || b.length < 2) throw new RangeError('matmul needs rank >= 2 operands');
  const bb = transposeB ? [...b.slice(0, -2), b[b.length - 1] as Dim, b[b.length - 2] as Dim] : b;
  const batch = broadcastDims(a.slice(0, -2), bb.slice(0, -2));
  return [...batch, a[a.length - 2] as Dim, bb[bb.length - 1] as Dim];
}
