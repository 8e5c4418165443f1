"""Generates extra Q-Former parity cases with the real HF transformers PyTorch code.

Each case draws a small random Blip2 config (sizes, heads, layers, cross_attention_frequency incl. 1,
query count, padded text and padded images), overwrites every parameter with seeded values (the
golden scheme: Linear W ~ N(0,1)/sqrt(fan_in), biases 0.1 N, LayerNorm weight 1 + 0.1 N, embeddings and
query tokens 0.5 N), and records:
  qformer direct calls (image mask and text mask applied): query_output, text_output, multimodal_output
  Blip2ForImageTextRetrieval.forward on pixel_values: itm_logits, itc_logits, image_feats, text_feat,
  with the vision tower's output saved as vision_image_embeds.
Usage: python make_random_cases.py OUT_DIR [N]
Needs torch, transformers, safetensors. Written to be run where those are installed.
"""
import json
import os
import sys

import torch
import transformers
from safetensors.torch import save_file
from transformers import Blip2Config, Blip2ForImageTextRetrieval

out_dir = sys.argv[1]
n_cases = int(sys.argv[2]) if len(sys.argv) > 2 else 6
torch.set_grad_enabled(False)


def overwrite(model, g):
    for name, p in model.named_parameters():
        if p.dim() == 2 and ("embeddings" not in name) and name != "query_tokens":
            p.copy_(torch.randn(p.shape, generator=g) / p.shape[1] ** 0.5)
        elif "LayerNorm.weight" in name or "layernorm.weight" in name or "layer_norm" in name and name.endswith("weight"):
            p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
        elif name.endswith("bias"):
            p.copy_(0.1 * torch.randn(p.shape, generator=g))
        else:
            p.copy_(0.5 * torch.randn(p.shape, generator=g))


for case in range(n_cases):
    g = torch.Generator().manual_seed(1000 + case)
    r = lambda lo, hi: int(torch.randint(lo, hi + 1, (1,), generator=g))
    heads = [1, 2, 4][r(0, 2)]
    head_dim = [4, 8, 12][r(0, 2)]
    hidden = heads * head_dim
    enc = [12, 20, 36][r(0, 2)]
    n_layers = r(1, 4)
    freq = [1, 2, 3][case % 3]
    q = r(1, 6)
    itc_dim = [8, 16][r(0, 1)]
    vocab = 50
    qcfg = dict(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=n_layers, num_attention_heads=heads,
                intermediate_size=hidden * 2 + 4 * r(0, 3), max_position_embeddings=32, cross_attention_frequency=freq,
                encoder_hidden_size=enc, use_qformer_text_input=True)
    vcfg = dict(hidden_size=enc, intermediate_size=enc * 2, num_hidden_layers=1, num_attention_heads=[1, 2, 4][r(0, 2)],
                image_size=8, patch_size=4)
    tcfg = dict(model_type="opt", vocab_size=64, hidden_size=16, ffn_dim=32, num_hidden_layers=1, num_attention_heads=2,
                word_embed_proj_dim=16, max_position_embeddings=64)
    config = Blip2Config(vision_config=vcfg, qformer_config=qcfg, text_config=tcfg, num_query_tokens=q,
                         image_text_hidden_size=itc_dim)
    config._attn_implementation = "eager"
    for sub in (config.vision_config, config.qformer_config, config.text_config):
        sub._attn_implementation = "eager"
    model = Blip2ForImageTextRetrieval(config).eval()
    overwrite(model, g)

    b = r(1, 3)
    n_img = r(3, 9)
    t = r(1, 9)
    img = torch.randn(b, n_img, enc, generator=g)
    img_mask = torch.ones(b, n_img, dtype=torch.long)
    txt_len = [t] + [r(1, t) for _ in range(b - 1)]
    img_len = [n_img] + [r(1, n_img) for _ in range(b - 1)]
    ids = torch.randint(1, vocab, (b, t), generator=g)
    mask = torch.zeros(b, t, dtype=torch.long)
    for i in range(b):
        mask[i, : txt_len[i]] = 1
        ids[i, txt_len[i]:] = 0
        img_mask[i, img_len[i]:] = 0
    qt = model.query_tokens.expand(b, -1, -1)

    out = {}
    failed = {}

    def record(name, fn):
        try:
            out[name] = fn()
        except Exception as e:  # an upstream code path that fails in this transformers version
            failed[name] = f"{type(e).__name__}: {str(e)[:200]}"

    record("query_output", lambda: model.qformer(query_embeds=qt, encoder_hidden_states=img, encoder_attention_mask=img_mask)[0])
    record("query_output_unmasked", lambda: model.qformer(query_embeds=qt, encoder_hidden_states=img)[0])
    text_emb = model.embeddings(input_ids=ids)
    record("text_output", lambda: model.qformer(query_embeds=text_emb, query_length=0, attention_mask=mask)[0])
    mm_emb = model.embeddings(input_ids=ids, query_embeds=qt)
    mm_mask = torch.cat([torch.ones(b, q, dtype=torch.long), mask], dim=1)
    record("multimodal_output", lambda: model.qformer(query_embeds=mm_emb, query_length=q, attention_mask=mm_mask,
                                                      encoder_hidden_states=img, encoder_attention_mask=img_mask)[0])
    record("multimodal_output_unmasked_image", lambda: model.qformer(query_embeds=mm_emb, query_length=q,
                                                                     attention_mask=mm_mask, encoder_hidden_states=img)[0])

    pixel_values = torch.randn(b, 3, 8, 8, generator=g)
    vis = model.vision_model(pixel_values=pixel_values)[0]
    record("itm_logits", lambda: model(pixel_values=pixel_values, input_ids=ids, attention_mask=mask,
                                       use_image_text_matching_head=True).logits_per_image)
    try:
        itc = model(pixel_values=pixel_values, input_ids=ids, attention_mask=mask, use_image_text_matching_head=False)
        out["itc_logits"] = itc.logits_per_image
        out["image_feats"] = itc.image_embeds
        out["text_feat"] = itc.text_embeds
    except Exception as e:
        failed["itc"] = f"{type(e).__name__}: {str(e)[:200]}"

    d = os.path.join(out_dir, f"random_{case}")
    os.makedirs(d, exist_ok=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items() if "position_ids" not in k}
    save_file(state, os.path.join(d, "weights.safetensors"))
    save_file({"image_embeds": img, "image_attention_mask": img_mask, "input_ids": ids, "attention_mask": mask,
               "vision_image_embeds": vis.contiguous()}, os.path.join(d, "inputs.safetensors"))
    save_file({k: v.contiguous() for k, v in out.items()}, os.path.join(d, "outputs.safetensors"))
    with open(os.path.join(d, "config.json"), "w") as f:
        f.write(config.to_json_string())
    meta = dict(torch=torch.__version__, transformers=transformers.__version__, batch=b, text_lengths=txt_len,
                image_lengths=img_len, failed=failed, qformer=qcfg, num_query_tokens=q, image_text_hidden_size=itc_dim)
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print("case", case, json.dumps(meta))
