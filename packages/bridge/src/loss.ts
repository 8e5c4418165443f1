import { type Ops, crossEntropyFromTargets, prepareCrossEntropyTargets } from '@qf/core';
export { logSoftmax, logSumExp } from '@qf/core';
import { type HostTensor, TensorError, fmtShape, toInt32 } from '@qf/io';
import { IGNORE_INDEX } from './soft-prompt.js';

/**
 * Language-model losses on the op interface, as HF computes them: mean cross-entropy over the
 * positions whose label is not -100. Labels are read on the host and turned into gather indices
 * ({@link CrossEntropyTargets}), so the graph needs no one-hot or comparison op and stays
 * differentiable on tfjs (`gather`, `exp`, `log`, `max` have gradients).
 */

/** Host-built targets of {@link crossEntropyLoss} for logits [B, L, V]. */
export interface CrossEntropyTargets {
  /** int32 [B, L]: flat index `(b * L + l) * V + label` into the logits (label 0 where ignored). */
  readonly index: HostTensor<'I32'>;
  /** float32 [B, L]: 1 where the position counts, 0 where ignored. */
  readonly weight: HostTensor<'F32'>;
  /** Number of counted positions (the mean's denominator; 0 gives NaN, as in PyTorch). */
  readonly count: number;
}

function labelMatrix(labels: HostTensor): [number, number, Int32Array] {
  if (labels.shape.length !== 2)
    throw new TensorError('TENSOR_SHAPE', 'labels', 'must be [B, T]', '[B, T]', fmtShape(labels.shape));
  const [b, t] = labels.shape as [number, number];
  return [b, t, toInt32(labels, 'labels')];
}

/**
 * Targets for logits [B, L, V] where logits position `l` is scored against `target(b, l)`.
 * @param target the label of (row, logits position), or -100 / undefined to ignore it
 */
function buildTargets(
  b: number,
  l: number,
  vocabSize: number,
  target: (row: number, pos: number) => number | undefined,
): CrossEntropyTargets {
  const ids = new Int32Array(b * l);
  for (let r = 0; r < b; r++) for (let p = 0; p < l; p++) ids[r * l + p] = target(r, p) ?? IGNORE_INDEX;
  const { index, weight } = prepareCrossEntropyTargets(ids, vocabSize, {
    ignoreIndex: IGNORE_INDEX,
    name: 'labels',
  });
  let count = 0;
  for (const w of weight.data) count += w;
  return {
    index: { dtype: 'I32', shape: [b, l], data: index.data },
    weight: { dtype: 'F32', shape: [b, l], data: weight.data },
    count,
  };
}

/**
 * Decoder-only (causal LM) targets, as HF `Blip2ForConditionalGeneration.forward`: the labels [B, T]
 * are aligned with the last T of the L logits positions (`logits[:, -T:]`), then shifted: position
 * `L - T + t - 1` predicts `labels[:, t]` for t >= 1 (`logits[:, :-1]` vs `labels[:, 1:]`).
 * @param logitsLength L (= Q + T for a BLIP-2 forward; labels may also span all L positions)
 */
export function causalLmTargets(
  labels: HostTensor,
  logitsLength: number,
  vocabSize: number,
): CrossEntropyTargets {
  const [b, t, y] = labelMatrix(labels);
  if (t > logitsLength)
    throw new TensorError(
      'TENSOR_SHAPE',
      'labels',
      'longer than the logits',
      `[${b}, <= ${logitsLength}]`,
      fmtShape([b, t]),
    );
  const offset = logitsLength - t;
  return buildTargets(b, logitsLength, vocabSize, (r, p) => {
    const j = p - offset + 1; // the label this position predicts
    return j >= 1 && j < t ? y[r * t + j] : undefined;
  });
}

/** Encoder-decoder targets: decoder logits [B, T, V] against labels [B, T], no shift (HF T5). */
export function seq2seqTargets(labels: HostTensor, vocabSize: number): CrossEntropyTargets {
  const [b, t, y] = labelMatrix(labels);
  return buildTargets(b, t, vocabSize, (r, p) => y[r * t + p]);
}

/**
 * Mean cross-entropy of logits [B, L, V] against host-built targets ({@link causalLmTargets},
 * {@link seq2seqTargets}) fed as graph inputs: `sum(w * (logsumexp - logits[target])) / sum(w)`.
 * @param index int [B, L] ({@link CrossEntropyTargets.index})
 * @param weight float [B, L] ({@link CrossEntropyTargets.weight})
 * @returns a float32 scalar
 */
export function crossEntropyLoss<T>(ops: Ops<T>, logits: T, index: T, weight: T): T {
  return crossEntropyFromTargets(ops, logits, {
    index: ops.reshape(index, [-1]),
    weight: ops.reshape(weight, [-1]),
  });
}
