import type { Rng } from '@qf/core';
import { type HostTensor, TensorError, fmtShape, toFloat32 } from '@qf/io';
import type { Stage1Negatives } from './batch.js';
import { LossError } from './errors.js';

/**
 * Draws one index per row with probability proportional to the row's weights (`torch.multinomial(w, 1)`),
 * never a positive: positives get probability 0 whatever their weight.
 */
function drawRows(name: string, weights: HostTensor, positives: Float32Array, rng: Rng): Int32Array {
  const [b, c] = weights.shape as [number, number];
  if (weights.shape.length !== 2 || b !== c)
    throw new TensorError('TENSOR_SHAPE', name, 'must be [B, B]', '[B, B]', fmtShape(weights.shape));
  if (positives.length !== b * b)
    throw new TensorError(
      'TENSOR_SHAPE',
      'positives',
      'must be [B, B] like the weights',
      `[${b}, ${b}]`,
      String(positives.length),
    );
  const w = toFloat32(weights);
  const out = new Int32Array(b);
  for (let i = 0; i < b; i++) {
    let total = 0;
    for (let j = 0; j < b; j++) {
      const v = w[i * b + j] as number;
      if (!(v >= 0 && Number.isFinite(v)))
        throw new LossError('LOSS_INPUT', `${name}[${i}, ${j}] = ${v} is not a finite non-negative weight`);
      if (positives[i * b + j] === 0) total += v;
    }
    if (!(total > 0))
      throw new LossError(
        'LOSS_NO_NEGATIVE',
        `${name} row ${i}: no negative to draw (every candidate is a positive or has weight 0)`,
      );
    const u = rng.uniform() * total;
    let acc = 0;
    let pick = -1;
    for (let j = 0; j < b; j++) {
      const v = w[i * b + j] as number;
      if (positives[i * b + j] !== 0 || v === 0) continue;
      pick = j; // last eligible candidate, in case rounding leaves u >= acc at the end
      acc += v;
      if (u < acc) break;
    }
    out[i] = pick;
  }
  return out;
}

/**
 * Hard-negative mining for ITM, seeded: for each text a negative image drawn from its row of
 * `weightsT2i`, for each image a negative text drawn from its row of `weightsI2t` (LAVIS: softmax of
 * the similarities with positives set to -10000, then `torch.multinomial`). Positives are excluded
 * explicitly, so a positive is never drawn even where its weight did not underflow to 0.
 * The same `rng` state gives the same indices on every platform (the draws are not PyTorch's).
 * @param weightsT2i [B, B] row b: weights of the images for text b
 * @param weightsI2t [B, B] row b: weights of the texts for image b
 * @param positives [B, B] 1 where image i and text j belong together (`stage1Positives`)
 * @throws LossError `LOSS_NO_NEGATIVE` when a row has no candidate (B = 1, or one shared image id)
 */
export function sampleHardNegatives(
  weightsT2i: HostTensor,
  weightsI2t: HostTensor,
  positives: HostTensor,
  rng: Rng,
): Stage1Negatives {
  const pos = toFloat32(positives);
  const b = positives.shape[0] as number;
  // positives[i, j] is symmetric for image ids and the diagonal; transpose anyway for the t2i rows.
  const posT = new Float32Array(b * b);
  for (let i = 0; i < b; i++) for (let j = 0; j < b; j++) posT[j * b + i] = pos[i * b + j] as number;
  const negImageIdx = drawRows('weightsT2i', weightsT2i, posT, rng);
  const negTextIdx = drawRows('weightsI2t', weightsI2t, pos, rng);
  return { negImageIdx, negTextIdx };
}
