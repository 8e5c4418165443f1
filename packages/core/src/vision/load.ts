import { type Checkpoint, type HostTensor, TensorError, type VisionConfig } from '@qf/io';
import { type LoadOptions, canonicalIndex, readParamTensor, unusedNames } from '../load.js';
import type { ParamSpec } from '../spec.js';
import { VISION_PREFIX, visionParamSpecs } from './spec.js';

/** Result of {@link loadVisionTensors}. */
export interface LoadedVision {
  readonly config: VisionConfig;
  /** Canonical name -> float32 tensor, exactly the tensors of `visionParamSpecs(config)`. */
  readonly tensors: Map<string, HostTensor>;
  /** Checkpoint tensors that were not loaded (Q-Former, language model, ...). */
  readonly ignored: string[];
}

const QKV_BIAS = /^(vision_model\.encoder\.layers\.\d+\.self_attn\.)qkv\.bias$/;

/**
 * The fused bias `[q_bias, 0, v_bias]` from the separate `self_attn.q_bias` / `self_attn.v_bias`
 * that older HF checkpoints store, or undefined when the checkpoint has neither.
 */
async function splitQkvBias(
  checkpoint: Checkpoint,
  byCanonical: ReadonlyMap<string, string>,
  p: ParamSpec,
  used: string[],
): Promise<HostTensor | undefined> {
  const prefix = QKV_BIAS.exec(p.name)?.[1];
  if (prefix === undefined || byCanonical.has(p.name)) return undefined;
  if (!byCanonical.has(`${prefix}q_bias`) || !byCanonical.has(`${prefix}v_bias`)) return undefined;
  const d = (p.shape[0] ?? 0) / 3;
  const part = (n: string): ParamSpec => ({ name: `${prefix}${n}`, shape: [d], kind: 'bias' });
  const q = await readParamTensor(checkpoint, byCanonical, part('q_bias'));
  const v = await readParamTensor(checkpoint, byCanonical, part('v_bias'));
  used.push(`${prefix}q_bias`, `${prefix}v_bias`);
  const data = new Float32Array(3 * d); // the K third stays 0, as HF builds it
  data.set(q.data as Float32Array, 0);
  data.set(v.data as Float32Array, 2 * d);
  return { dtype: 'F32', shape: [3 * d], data };
}

/**
 * Reads the vision tower (`vision_model.*`) of a checkpoint: every tensor of
 * `visionParamSpecs(config)` must exist with its shape (F16/BF16 converted to float32), else a
 * TensorError names it with expected vs actual shape. The fused attention bias may also come as the
 * separate `self_attn.q_bias` / `self_attn.v_bias` of older HF checkpoints. Other tensors are only
 * listed in `ignored`; with `strict`, an unused `vision_model.*` tensor (say, an extra layer) throws.
 */
export async function loadVisionTensors(
  checkpoint: Checkpoint,
  config: VisionConfig,
  options: LoadOptions = {},
): Promise<LoadedVision> {
  const byCanonical = canonicalIndex(checkpoint, options.canonicalName);
  const tensors = new Map<string, HostTensor>();
  const alsoUsed: string[] = [];
  for (const p of visionParamSpecs(config)) {
    const fused = await splitQkvBias(checkpoint, byCanonical, p, alsoUsed);
    tensors.set(p.name, fused ?? (await readParamTensor(checkpoint, byCanonical, p)));
  }
  const used = [...tensors.keys(), ...alsoUsed];
  if (options.strict) {
    const usedSet = new Set(used);
    const extra = [...byCanonical.keys()].filter((c) => c.startsWith(VISION_PREFIX) && !usedSet.has(c));
    if (extra.length > 0) {
      throw new TensorError(
        'TENSOR_UNEXPECTED',
        byCanonical.get(extra[0] ?? '') ?? '',
        `${extra.length} vision_model tensor(s) are not used by the vision tower`,
      );
    }
  }
  return { config, tensors, ignored: unusedNames(checkpoint, byCanonical, used) };
}
