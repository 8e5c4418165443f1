/**
 * The backend-agnostic op interface. Model code in qformer-ts is written only against this interface:
 * it never imports a tensor library. A backend implements it by computing eagerly (tfjs) or by
 * recording a graph (ONNX). Every op has exactly one meaning on every backend.
 *
 * Conventions:
 * - `T` is the backend's opaque tensor handle.
 * - Float tensors are float32; integer tensors (token ids) are int32.
 * - Binary ops broadcast like NumPy.
 * - Axes may be negative (counted from the end).
 * - `reshape` accepts `0` (copy that input dimension) and one `-1` (infer), as ONNX Reshape does, so
 *   model code can keep batch and sequence axes dynamic without knowing their sizes.
 */
export interface Ops<T> {
  /** Short backend name, e.g. `tfjs-cpu`. */
  readonly name: string;

  // ---- leaves ----------------------------------------------------------------------------------
  /** A constant tensor from host data. */
  constant(data: Float32Array | Int32Array, shape: readonly number[]): T;
  /** A float32 0-d constant. */
  scalar(value: number): T;

  // ---- layout ----------------------------------------------------------------------------------
  /** Reshape; `0` copies the input dimension at that position, `-1` is inferred. */
  reshape(x: T, shape: readonly number[]): T;
  /** Permute axes. */
  transpose(x: T, perm: readonly number[]): T;
  /** Concatenate along `axis`. */
  concat(xs: readonly T[], axis: number): T;
  /** `x[..., start:end, ...]` along one axis; `end` omitted means to the end of the axis. */
  slice(x: T, axis: number, start: number, end?: number): T;
  /** Rows of a 2-D `table` [V, D] picked by int32 `ids` of any shape -> [...ids.shape, D]. */
  gather(table: T, ids: T): T;
  /** Broadcast `x` (dim 0 of size 1) to the batch size (dim 0) of `like`. */
  expandBatch(x: T, like: T): T;
  /** int32 [n] holding 0..n-1 where n = like.shape[axis]. */
  range(like: T, axis: number): T;

  // ---- elementwise -----------------------------------------------------------------------------
  add(a: T, b: T): T;
  sub(a: T, b: T): T;
  mul(a: T, b: T): T;
  div(a: T, b: T): T;
  maximum(a: T, b: T): T;
  minimum(a: T, b: T): T;
  sqrt(x: T): T;
  exp(x: T): T;
  log(x: T): T;
  tanh(x: T): T;
  /** `max(x, 0)`. */
  relu(x: T): T;
  /** Exact (erf) GELU: `0.5 x (1 + erf(x / sqrt 2))`. */
  gelu(x: T): T;
  /** Cast to float32 (from int32 or bool-like masks). */
  toFloat(x: T): T;

  // ---- reductions ------------------------------------------------------------------------------
  sum(x: T, axis: number, keepDims?: boolean): T;
  mean(x: T, axis: number, keepDims?: boolean): T;
  max(x: T, axis: number, keepDims?: boolean): T;

  // ---- neural-network primitives ---------------------------------------------------------------
  /** Batched matrix product over the last two axes; leading axes must match or broadcast. */
  matmul(a: T, b: T, transposeB?: boolean): T;
  /** `x @ weight^T + bias` with `weight` in PyTorch layout [out, in]; `x` is [..., in]. */
  linear(x: T, weight: T, bias?: T): T;
  /** Softmax over the last axis. */
  softmax(x: T): T;
  /** LayerNorm over the last axis: `(x - mean) / sqrt(var + eps) * gamma + beta` (biased variance). */
  layerNorm(x: T, gamma: T, beta: T, eps: number): T;
}
