import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { blip2Config, blip2LanguageModel, blip2ParamShapes } from '@qf/bridge';
import type { HostTensor } from '@qf/io';

/** A captioning benchmark case: a whole BLIP-2 model (golden weights, or random at full size). */
export interface CaptionWorkload {
  readonly name: string;
  readonly description: string;
  /** The HF `config.json` content. */
  readonly config: Record<string, unknown>;
  /** An HF model directory with the weights, or undefined: random weights ({@link lazyRandomTensors}). */
  readonly modelDir?: string;
  /** New tokens per caption (EOS suppressed until then, so every run generates exactly this many). */
  readonly newTokens: number;
  /** Backends this workload runs on, and why the others are left out. */
  readonly skip?: Readonly<Record<string, string>>;
  /** Weight storage of the ONNX export (`float16` halves the files; compute stays float32). */
  readonly onnxWeights: 'float32' | 'float16';
}

/** `../shared/golden`, next to the repository. */
export const GOLDEN_DIR = fileURLToPath(new URL('../../../../shared/golden', import.meta.url));

/**
 * HF `facebook/opt-125m`'s architecture (12 layers, hidden 768, 12 heads, FFN 3072, vocab 50272):
 * the small LM of the BLIP-2-sized workload. BLIP-2's smallest real LM, OPT-2.7B (about 11 GB in
 * float32), does not fit a 2-core / 24 GiB machine's time budget.
 */
export const OPT_125M_TEXT_CONFIG = {
  model_type: 'opt',
  hidden_size: 768,
  ffn_dim: 3072,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  vocab_size: 50272,
  max_position_embeddings: 2048,
  word_embed_proj_dim: 768,
  do_layer_norm_before: true,
  activation_function: 'relu',
  bos_token_id: 2,
  eos_token_id: 2,
  pad_token_id: 1,
};

/** Every captioning workload. */
export const CAPTION_WORKLOADS: Readonly<Record<string, CaptionWorkload>> = {
  'tiny-opt': {
    name: 'tiny-opt',
    description:
      'golden blip2_opt_tiny (HF weights): vision 2 layers hidden 48 at 32 px, Q-Former 2 layers hidden 64 with 4 queries, OPT 2 layers hidden 40, vocab 120',
    config: {},
    modelDir: join(GOLDEN_DIR, 'blip2_opt_tiny', 'hf'),
    newTokens: 20,
    onnxWeights: 'float32',
  },
  'blip2-vitg-opt125m': {
    name: 'blip2-vitg-opt125m',
    description:
      'BLIP-2-sized image side with HF defaults (ViT-g/14 at 224 px: 39 layers, hidden 1408, 16 heads, MLP 6144; Q-Former 12 layers, hidden 768, 32 queries) and a SMALL LM (OPT-125m architecture, not OPT-2.7B); random weights',
    config: {
      model_type: 'blip-2',
      num_query_tokens: 32,
      use_decoder_only_language_model: true,
      vision_config: { model_type: 'blip_2_vision_model' },
      qformer_config: { model_type: 'blip_2_qformer' },
      text_config: OPT_125M_TEXT_CONFIG,
    },
    newTokens: 20,
    onnxWeights: 'float16',
    skip: {
      'tfjs-cpu':
        'ViT-g is about 0.52 TFLOP per 224 px image; tfjs-cpu runs this repository at about 0.6 GFLOP/s (Q-Former benchmark), i.e. roughly 15 minutes per caption: not measured',
    },
  },
};

/** Looks up a workload. @throws Error listing the known names. */
export function getCaptionWorkload(name: string): CaptionWorkload {
  const w = CAPTION_WORKLOADS[name];
  if (!w) throw new Error(`unknown workload "${name}" (known: ${Object.keys(CAPTION_WORKLOADS).join(', ')})`);
  return w;
}

/** A seeded xorshift32 stream, in [-1, 1). */
function fillUniform(out: Float32Array, seed: number, scale: number): void {
  let x = seed >>> 0 || 0x9e3779b9;
  for (let i = 0; i < out.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = ((x >>> 0) / 2147483648 - 1) * scale;
  }
}

/** FNV-1a of a name: a per-tensor seed independent of iteration order. */
function nameSeed(name: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/**
 * Random float32 weights for every parameter of a whole model, with the variance of HF's init
 * (uniform with std 0.02 for matrices and embeddings, 0 for biases, 1 for norm weights) from a fast
 * seeded xorshift fill (about 10x faster than `initParams`' Box-Muller normals, which would take
 * about 2 minutes for ViT-g's 1 billion values here). Each tensor's data is made when read and not
 * kept, so the caller never holds more than one tensor: an OnnxBackend with `tempFileStorage()` then
 * streams ViT-g's 4 GB to disk one tensor at a time. Reading the same tensor twice gives the same
 * values (seeded by name).
 */
export function lazyRandomTensors(config: Record<string, unknown>, seed = 0): Map<string, HostTensor> {
  const cfg = blip2Config(config);
  const shapes = blip2ParamShapes(cfg, blip2LanguageModel(cfg));
  const out = new Map<string, HostTensor>();
  const std = 0.02;
  for (const [name, shape] of shapes) {
    const n = shape.reduce((a, b) => a * b, 1);
    const make = (): Float32Array => {
      const data = new Float32Array(n);
      if (/norm\d*\.weight$/i.test(name)) data.fill(1);
      else if (!name.endsWith('.bias')) fillUniform(data, nameSeed(name, seed), std * Math.sqrt(3));
      return data;
    };
    out.set(name, {
      dtype: 'F32',
      shape: [...shape],
      get data() {
        return make();
      },
    } as HostTensor);
  }
  return out;
}

/** The HF config of a workload: its own, or `config.json` of its model directory. */
export function workloadConfig(w: CaptionWorkload): Record<string, unknown> {
  return w.modelDir ? JSON.parse(readFileSync(join(w.modelDir, 'config.json'), 'utf8')) : w.config;
}

/** Parameter counts of a model config: all, and the vision tower's. */
export function modelSize(config: Record<string, unknown>): { params: number; vision: number } {
  const cfg = blip2Config(config);
  let params = 0;
  let vision = 0;
  for (const [name, shape] of blip2ParamShapes(cfg, blip2LanguageModel(cfg))) {
    const n = shape.reduce((a, b) => a * b, 1);
    params += n;
    if (name.startsWith('vision_model.')) vision += n;
  }
  return { params, vision };
}
