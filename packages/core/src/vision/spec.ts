import type { VisionConfig } from '@qf/io';
import type { ParamSpec } from '../spec.js';

/** Prefix of every vision tower parameter (HF `Blip2VisionModel` inside the full model). */
export const VISION_PREFIX = 'vision_model.';

/** Sizes of the vision tower derived from its config. */
export interface VisionShape {
  /** D, the hidden width. */
  readonly hidden: number;
  readonly numHeads: number;
  readonly headDim: number;
  /** S, the input image side. */
  readonly imageSize: number;
  /** p, the patch (and conv stride) size. */
  readonly patchSize: number;
  /** g = floor(image_size / p) patches per side. */
  readonly grid: number;
  /** N = g * g patch tokens (the sequence is N + 1 with the class token). */
  readonly numPatches: number;
  readonly eps: number;
}

/** Derives {@link VisionShape} from a validated vision config. */
export function visionShape(cfg: VisionConfig): VisionShape {
  const grid = Math.floor(cfg.imageSize / cfg.patchSize);
  return {
    hidden: cfg.hiddenSize,
    numHeads: cfg.numAttentionHeads,
    headDim: cfg.hiddenSize / cfg.numAttentionHeads,
    imageSize: cfg.imageSize,
    patchSize: cfg.patchSize,
    grid,
    numPatches: grid * grid,
    eps: cfg.layerNormEps,
  };
}

/**
 * Every parameter of the vision tower (HF `Blip2VisionModel` / `InstructBlipVisionModel` names under
 * `vision_model.`, PyTorch shapes), in a stable order. The fused `self_attn.qkv.bias` [3D] is
 * HF's `[q_bias, 0, v_bias]` (present only with `qkv_bias`).
 */
export function visionParamSpecs(cfg: VisionConfig): ParamSpec[] {
  const s = visionShape(cfg);
  const d = s.hidden;
  const p = VISION_PREFIX;
  const out: ParamSpec[] = [
    { name: `${p}embeddings.class_embedding`, shape: [1, 1, d], kind: 'embedding' },
    {
      name: `${p}embeddings.patch_embedding.weight`,
      shape: [d, 3, s.patchSize, s.patchSize],
      kind: 'conv.weight',
    },
    { name: `${p}embeddings.patch_embedding.bias`, shape: [d], kind: 'bias' },
    { name: `${p}embeddings.position_embedding`, shape: [1, s.numPatches + 1, d], kind: 'embedding' },
  ];
  const linear = (prefix: string, outF: number, inF: number, bias = true) => {
    out.push({ name: `${prefix}.weight`, shape: [outF, inF], kind: 'linear.weight' });
    if (bias) out.push({ name: `${prefix}.bias`, shape: [outF], kind: 'bias' });
  };
  const norm = (prefix: string) => {
    out.push({ name: `${prefix}.weight`, shape: [d], kind: 'norm.weight' });
    out.push({ name: `${prefix}.bias`, shape: [d], kind: 'norm.bias' });
  };
  for (let i = 0; i < cfg.numHiddenLayers; i++) {
    const l = `${p}encoder.layers.${i}`;
    norm(`${l}.layer_norm1`);
    linear(`${l}.self_attn.qkv`, 3 * d, d, cfg.qkvBias);
    linear(`${l}.self_attn.projection`, d, d);
    norm(`${l}.layer_norm2`);
    linear(`${l}.mlp.fc1`, cfg.intermediateSize, d);
    linear(`${l}.mlp.fc2`, d, cfg.intermediateSize);
  }
  norm(`${p}post_layernorm`);
  return out;
}
