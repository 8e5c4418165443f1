/**
 * The tensor names and shapes HF transformers' BLIP-2 classes create for a config, written from the
 * modelling code's module tree (transformers 4.47: `Blip2VisionModel`, `Blip2QFormerModel`,
 * `Blip2TextEmbeddings`, `OPTForCausalLM`). A test checks this table against the HF-written golden
 * checkpoints first, then uses it on the demo's checkpoint: a checkpoint that matches it loads into
 * `Blip2ForConditionalGeneration` / `Blip2ForImageTextRetrieval` by name and shape.
 */
import { openSafetensors } from '@qf/io/node';

type Json = Record<string, unknown>;
export type Layout = Map<string, number[]>;

/** A config field, or HF's default when the saved config leaves it out. */
function field(section: Json, key: string, fallback: number | boolean): number {
  const v = section[key] ?? fallback;
  return typeof v === 'boolean' ? Number(v) : (v as number);
}

function vision(c: Json, out: Layout): void {
  const v = c['vision_config'] as Json;
  const d = field(v, 'hidden_size', 1408);
  const ff = field(v, 'intermediate_size', 6144);
  const p = field(v, 'patch_size', 14);
  const s = field(v, 'image_size', 224);
  const e = 'vision_model.embeddings.';
  out.set(`${e}class_embedding`, [1, 1, d]);
  out.set(`${e}patch_embedding.weight`, [d, field(v, 'num_channels', 3), p, p]);
  out.set(`${e}patch_embedding.bias`, [d]);
  out.set(`${e}position_embedding`, [1, (s / p) ** 2 + 1, d]);
  for (let i = 0; i < field(v, 'num_hidden_layers', 39); i++) {
    const l = `vision_model.encoder.layers.${i}.`;
    for (const n of ['layer_norm1', 'layer_norm2']) {
      out.set(`${l}${n}.weight`, [d]);
      out.set(`${l}${n}.bias`, [d]);
    }
    out.set(`${l}self_attn.qkv.weight`, [3 * d, d]);
    if (field(v, 'qkv_bias', true)) out.set(`${l}self_attn.qkv.bias`, [3 * d]);
    out.set(`${l}self_attn.projection.weight`, [d, d]);
    out.set(`${l}self_attn.projection.bias`, [d]);
    out.set(`${l}mlp.fc1.weight`, [ff, d]);
    out.set(`${l}mlp.fc1.bias`, [ff]);
    out.set(`${l}mlp.fc2.weight`, [d, ff]);
    out.set(`${l}mlp.fc2.bias`, [d]);
  }
  out.set('vision_model.post_layernorm.weight', [d]);
  out.set('vision_model.post_layernorm.bias', [d]);
}

function linear(out: Layout, name: string, outF: number, inF: number): void {
  out.set(`${name}.weight`, [outF, inF]);
  out.set(`${name}.bias`, [outF]);
}

function norm(out: Layout, name: string, d: number): void {
  out.set(`${name}.weight`, [d]);
  out.set(`${name}.bias`, [d]);
}

function qformer(c: Json, out: Layout): void {
  const q = c['qformer_config'] as Json;
  const h = field(q, 'hidden_size', 768);
  const ff = field(q, 'intermediate_size', 3072);
  const enc = field(q, 'encoder_hidden_size', 1408);
  const every = field(q, 'cross_attention_frequency', 2);
  const text = field(q, 'use_qformer_text_input', false) === 1;
  out.set('query_tokens', [1, field(c, 'num_query_tokens', 32), h]);
  norm(out, 'qformer.layernorm', h);
  for (let i = 0; i < field(q, 'num_hidden_layers', 12); i++) {
    const l = `qformer.encoder.layer.${i}.`;
    for (const k of ['query', 'key', 'value']) linear(out, `${l}attention.attention.${k}`, h, h);
    linear(out, `${l}attention.output.dense`, h, h);
    norm(out, `${l}attention.output.LayerNorm`, h);
    if (i % every === 0) {
      linear(out, `${l}crossattention.attention.query`, h, h);
      linear(out, `${l}crossattention.attention.key`, h, enc);
      linear(out, `${l}crossattention.attention.value`, h, enc);
      linear(out, `${l}crossattention.output.dense`, h, h);
      norm(out, `${l}crossattention.output.LayerNorm`, h);
    }
    const ffns = text ? ['_query', ''] : ['_query'];
    for (const s of ffns) {
      linear(out, `${l}intermediate${s}.dense`, ff, h);
      linear(out, `${l}output${s}.dense`, h, ff);
      norm(out, `${l}output${s}.LayerNorm`, h);
    }
  }
}

/** `Blip2ForImageTextRetrieval`'s own modules (text embeddings, ITC projections, ITM head). */
function retrievalHeads(c: Json, out: Layout): void {
  const q = c['qformer_config'] as Json;
  const h = field(q, 'hidden_size', 768);
  const itc = field(c, 'image_text_hidden_size', 256);
  out.set('embeddings.word_embeddings.weight', [field(q, 'vocab_size', 30522), h]);
  out.set('embeddings.position_embeddings.weight', [field(q, 'max_position_embeddings', 512), h]);
  linear(out, 'vision_projection', itc, h);
  linear(out, 'text_projection', itc, h);
  linear(out, 'itm_head', 2, h);
}

function opt(c: Json, out: Layout, withLmHead: boolean): void {
  const t = c['text_config'] as Json;
  const h = field(t, 'hidden_size', 768);
  const ff = field(t, 'ffn_dim', 3072);
  const vocab = field(t, 'vocab_size', 50272);
  const proj = field(t, 'word_embed_proj_dim', h);
  const d = 'language_model.model.decoder.';
  out.set(`${d}embed_tokens.weight`, [vocab, proj]);
  // OPT's learned positions carry an offset of 2.
  out.set(`${d}embed_positions.weight`, [field(t, 'max_position_embeddings', 2048) + 2, h]);
  norm(out, `${d}final_layer_norm`, h);
  for (let i = 0; i < field(t, 'num_hidden_layers', 12); i++) {
    const l = `${d}layers.${i}.`;
    for (const k of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) linear(out, `${l}self_attn.${k}`, h, h);
    norm(out, `${l}self_attn_layer_norm`, h);
    norm(out, `${l}final_layer_norm`, h);
    linear(out, `${l}fc1`, ff, h);
    linear(out, `${l}fc2`, h, ff);
  }
  if (withLmHead) out.set('language_model.lm_head.weight', [vocab, proj]);
}

/**
 * Every tensor `Blip2ForConditionalGeneration` (OPT) creates for `config`. `lm_head.weight` is
 * left out when `tie_word_embeddings` (HF ties it to `embed_tokens` and does not need it saved).
 */
export function conditionalGenerationLayout(config: Json, lmHead = 'unless-tied'): Layout {
  const out: Layout = new Map();
  vision(config, out);
  qformer(config, out);
  const t = config['text_config'] as Json;
  const q = config['qformer_config'] as Json;
  linear(out, 'language_projection', field(t, 'hidden_size', 768), field(q, 'hidden_size', 768));
  opt(config, out, lmHead === 'always' || t['tie_word_embeddings'] === false);
  return out;
}

/** Every tensor `Blip2ForImageTextRetrieval` creates for `config` (optionally without the vision tower). */
export function imageTextRetrievalLayout(config: Json, withVision = true): Layout {
  const out: Layout = new Map();
  if (withVision) vision(config, out);
  qformer(config, out);
  retrievalHeads(config, out);
  return out;
}

/** name -> shape of every tensor in a safetensors file. */
export async function fileLayout(path: string): Promise<Layout> {
  const f = await openSafetensors(path);
  try {
    return new Map(f.names().map((n) => [n, [...(f.info(n)?.shape ?? [])]]));
  } finally {
    await f.close();
  }
}
