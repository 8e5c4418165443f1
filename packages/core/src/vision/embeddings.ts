import type { Ops } from '../ops.js';
import type { ParamStore } from '../params.js';
import type { VisionShape } from './spec.js';

/**
 * Patch embedding (HF: `Conv2d(3, D, kernel=p, stride=p)` then `flatten(2).transpose(1, 2)`), as
 * patchify + `linear`: the image is cut into g x g patches by reshape/transpose, each patch
 * flattened in (channel, row, column) order, which is the order of the conv weight [D, 3, p, p]
 * reshaped to [D, 3 p p]. Pixels past g * p (when image_size is not a multiple of p) are dropped,
 * as the strided conv drops them. Batch stays dynamic (`0` in reshape targets).
 * @param params scoped to `vision_model.embeddings.`
 * @param pixelValues [B, 3, S, S]
 * @returns [B, N, D] with N = g * g, patches in row-major grid order
 */
export function patchEmbedding<T>(ops: Ops<T>, s: VisionShape, params: ParamStore<T>, pixelValues: T): T {
  const p = s.patchSize;
  const g = s.grid;
  let x = pixelValues;
  if (s.imageSize !== g * p) x = ops.slice(ops.slice(x, 2, 0, g * p), 3, 0, g * p); // [B, 3, gp, gp]
  x = ops.reshape(x, [0, 3, g, p, g, p]); // [B, c, gy, ky, gx, kx]
  x = ops.transpose(x, [0, 2, 4, 1, 3, 5]); // [B, gy, gx, c, ky, kx]
  x = ops.reshape(x, [0, s.numPatches, 3 * p * p]); // [B, N, 3 p p]
  const weight = ops.reshape(params.get('patch_embedding.weight'), [s.hidden, 3 * p * p]); // [D, 3 p p]
  return ops.linear(x, weight, params.get('patch_embedding.bias')); // [B, N, D]
}

/**
 * Vision embeddings (HF `Blip2VisionEmbeddings`): `[class ; patches] + position_embedding`.
 * @param params scoped to `vision_model.embeddings.`
 * @param pixelValues [B, 3, S, S] with S = image_size
 * @returns [B, N + 1, D] (hidden_states.0 of the vision encoder)
 */
export function visionEmbeddings<T>(ops: Ops<T>, s: VisionShape, params: ParamStore<T>, pixelValues: T): T {
  const patches = patchEmbedding(ops, s, params, pixelValues); // [B, N, D]
  const cls = ops.expandBatch(params.get('class_embedding'), patches); // [1, 1, D] -> [B, 1, D]
  const tokens = ops.concat([cls, patches], 1); // [B, N + 1, D]
  return ops.add(tokens, params.get('position_embedding')); // + [1, N + 1, D]
}
