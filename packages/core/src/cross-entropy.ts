import { type HostTensor, TensorError, toInt32 } from '@qf/io';
import type { Ops } from './ops.js';

/**
 * Cross-entropy on the op interface, shared by the stage-1 losses (@qf/losses) and the LM losses
 * (@qf/bridge). Targets are read on the host and turned into flat gather indices plus 0/1 weights,
 * so the graph needs no one-hot or comparison op and stays differentiable on tfjs.
 */

/** `log(sum(exp(x)))` over the last axis, computed stably as `m + log(sum(exp(x - m)))`; keeps dims. */
export function logSumExp<T>(ops: Ops<T>, x: T): T {
  const m = ops.max(x, -1, true);
  return ops.add(m, ops.log(ops.sum(ops.exp(ops.sub(x, m)), -1, true)));
}

/** `log(softmax(x))` over the last axis, computed stably as `x - max - log(sum(exp(x - max)))`. */
export function logSoftmax<T>(ops: Ops<T>, x: T): T {
  const shifted = ops.sub(x, ops.max(x, -1, true));
  return ops.sub(shifted, ops.log(ops.sum(ops.exp(shifted), -1, true)));
}

/**
 * Class targets of {@link crossEntropyFromTargets}, as graph tensors, one entry per row of the
 * logits flattened to [N, C] (see {@link prepareCrossEntropyTargets}).
 */
export interface CrossEntropyTargets<T> {
  /** int32 [N]: `row * C + class` for each row (any valid position for an ignored row). */
  readonly index: T;
  /** float32 [N]: 1 for a counted row, 0 for an ignored one; omitted = every row counts. */
  readonly weight?: T | undefined;
}

/** Options of {@link prepareCrossEntropyTargets}. */
export interface PrepareTargetsOptions {
  /** Target value that marks a row as ignored (PyTorch `ignore_index`, default -100). */
  readonly ignoreIndex?: number;
  /** Name of the targets in error messages (default `targets`, e.g. `labels`). */
  readonly name?: string;
}

/**
 * Host side of a cross-entropy: class ids -> the graph inputs of {@link crossEntropyFromTargets}.
 * @param targets class ids, one per row of the logits flattened to [N, C] (any integer dtype)
 * @param numClasses C
 * @returns `index` I32 [N] (`row * C + class`, `row * C` when ignored) and `weight` F32 [N]
 * @throws TensorError `TENSOR_VALUE` for a target outside [0, C) that is not `ignoreIndex`, or when
 *   N * C does not fit int32 indices
 */
export function prepareCrossEntropyTargets(
  targets: HostTensor | Int32Array | readonly number[],
  numClasses: number,
  options: PrepareTargetsOptions = {},
): { index: HostTensor<'I32'>; weight: HostTensor<'F32'> } {
  const ignore = options.ignoreIndex ?? -100;
  const name = options.name ?? 'targets';
  const ids = Array.isArray(targets)
    ? Int32Array.from(targets)
    : targets instanceof Int32Array
      ? targets
      : toInt32(targets as HostTensor, name);
  const n = ids.length;
  if (n * numClasses > 2 ** 31 - 1)
    throw new TensorError('TENSOR_VALUE', name, `${n} rows x ${numClasses} classes overflow int32 indices`);
  const index = new Int32Array(n);
  const weight = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const c = ids[i] as number;
    if (c === ignore) {
      index[i] = i * numClasses;
      continue;
    }
    if (!(c >= 0 && c < numClasses))
      throw new TensorError(
        'TENSOR_VALUE',
        name,
        `row ${i}: class out of range`,
        `0..${numClasses - 1} or ${ignore}`,
        `${c}`,
      );
    index[i] = i * numClasses + c;
    weight[i] = 1;
  }
  return {
    index: { dtype: 'I32', shape: [n], data: index },
    weight: { dtype: 'F32', shape: [n], data: weight },
  };
}

/**
 * Mean cross-entropy over the counted rows, with PyTorch's label smoothing:
 * `loss_i = (1 - e) * -log p[i, t_i] + e * mean_c(-log p[i, c])`, averaged over rows with weight 1
 * (`CrossEntropyLoss(label_smoothing=e, ignore_index=...)`, mean reduction). No counted row gives
 * NaN (0/0), as in PyTorch.
 * @param logits [..., C]: rows are the logits flattened to [N, C]
 * @returns float32 scalar
 */
export function crossEntropyFromTargets<T>(
  ops: Ops<T>,
  logits: T,
  targets: CrossEntropyTargets<T>,
  labelSmoothing = 0,
): T {
  const logp = logSoftmax(ops, logits); // [..., C]
  const picked = ops.reshape(ops.gather(ops.reshape(logp, [-1, 1]), targets.index), [-1]); // [N]
  let perRow = ops.mul(picked, ops.scalar(-(1 - labelSmoothing)));
  if (labelSmoothing !== 0) {
    const uniform = ops.reshape(ops.mean(logp, -1), [-1]); // [N]
    perRow = ops.sub(perRow, ops.mul(uniform, ops.scalar(labelSmoothing)));
  }
  if (!targets.weight) return ops.mean(perRow, 0);
  return ops.div(ops.sum(ops.mul(perRow, targets.weight), 0), ops.sum(targets.weight, 0));
}

/** Options of {@link crossEntropy}. */
export interface CrossEntropyOptions extends PrepareTargetsOptions {
  /** C, the size of the logits' last axis. */
  readonly numClasses: number;
  /** PyTorch `label_smoothing` (default 0). */
  readonly labelSmoothing?: number;
}

/**
 * Cross-entropy of `logits` [..., C] against host class ids (one per row, `ignoreIndex` rows
 * skipped), mean over counted rows, with optional label smoothing — PyTorch `F.cross_entropy`.
 * The targets become constants of the graph: on a tracing backend (ONNX) that caches graphs by key,
 * feed {@link prepareCrossEntropyTargets}'s tensors as inputs to {@link crossEntropyFromTargets}
 * instead, or the first batch's targets would be reused.
 * @returns float32 scalar
 */
export function crossEntropy<T>(
  ops: Ops<T>,
  logits: T,
  targets: HostTensor | Int32Array | readonly number[],
  options: CrossEntropyOptions,
): T {
  const p = prepareCrossEntropyTargets(targets, options.numClasses, options);
  return crossEntropyFromTargets(
    ops,
    logits,
    {
      index: ops.constant(p.index.data, p.index.shape),
      weight: ops.constant(p.weight.data, p.weight.shape),
    },
    options.labelSmoothing ?? 0,
  );
}

/**
 * Cross-entropy against soft targets: `mean over rows of -sum_c targets[i, c] * log softmax(logits)[i, c]`
 * (LAVIS's image-id ITC: the targets already include the smoothing).
 * @param logits [N, C]
 * @param targets [N, C] float32, each row summing to 1
 * @returns float32 scalar
 */
export function softCrossEntropy<T>(ops: Ops<T>, logits: T, targets: T): T {
  const perRow = ops.sum(ops.mul(logSoftmax(ops, logits), targets), -1); // [N]
  return ops.mul(ops.mean(perRow, 0), ops.scalar(-1));
}
