"""Generates held-out whole-model BLIP-2 / InstructBLIP parity cases with the real HF transformers code.

Each case draws a small random config that differs from the pinned goldens (vision depth and width,
Q-Former depth, query count, cross_attention_frequency 1/2/3, OPT or T5 LM, BLIP-2 or InstructBLIP),
overwrites every parameter with seeded values (the golden scheme: Linear/Conv W ~ N(0,1)/sqrt(fan_in),
biases 0.1 N, norm weights 1 + 0.1 N, embeddings, query tokens, class/position embeddings and T5
relative biases 0.5 N), and records, in float32 eval mode:
  vision.last_hidden_state, qformer.last_hidden_state, language_projection.output,
  lm.logits and lm.loss (forward with labels),
  greedy generation (max_new_tokens=5): generate.sequences + generate.scores,
  beam search (num_beams=3, max_new_tokens=5): beam.sequences + beam.sequences_scores.
The prompts start with Q copies of an `<image>` placeholder id (config.image_token_index), the flow of
transformers >= 4.47 / 5.x, which puts the soft prompt at those positions: the same LM inputs as the
legacy concatenation of ../shared/golden. meta.json records the placeholder id and everything needed
to strip those positions again.

Usage: python make_blip2_cases.py OUT_DIR [N]   (needs torch, transformers, safetensors; not run in CI)
"""
import json
import os
import sys

import torch
import transformers
from safetensors.torch import save_file
from transformers import (Blip2Config, Blip2ForConditionalGeneration, InstructBlipConfig,
                          InstructBlipForConditionalGeneration)

out_dir = sys.argv[1]
n_cases = int(sys.argv[2]) if len(sys.argv) > 2 else 6
torch.set_grad_enabled(False)


def overwrite(model, g):
    for name, p in model.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        if p.dim() >= 2 and "embed" not in name and "query_tokens" not in name and "relative_attention_bias" not in name:
            fan_in = p[0].numel()
            p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)
        elif ("norm" in name.lower() or "layernorm" in name.lower()) and leaf == "weight":
            p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
        elif leaf == "bias" or leaf in ("q_bias", "v_bias"):
            p.copy_(0.1 * torch.randn(p.shape, generator=g))
        else:
            p.copy_(0.5 * torch.randn(p.shape, generator=g))


for case in range(n_cases):
    g = torch.Generator().manual_seed(5000 + case)
    r = lambda lo, hi: int(torch.randint(lo, hi + 1, (1,), generator=g))
    instruct = case % 3 == 2
    lm = "t5" if instruct or case % 2 == 1 else "opt"
    q = r(2, 6)
    vh = [24, 32, 48][r(0, 2)]
    vcfg = dict(hidden_size=vh, intermediate_size=vh * 2, num_hidden_layers=r(1, 3), num_attention_heads=[2, 4][r(0, 1)],
                image_size=16, patch_size=[4, 8][r(0, 1)])
    qh = [32, 48][r(0, 1)]
    qcfg = dict(vocab_size=60, hidden_size=qh, num_hidden_layers=r(1, 4), num_attention_heads=[2, 4][r(0, 1)],
                intermediate_size=qh * 2, max_position_embeddings=32, cross_attention_frequency=[1, 2, 3][case % 3],
                encoder_hidden_size=vh)
    vocab = 90
    image_token = vocab - 1
    if lm == "opt":
        tcfg = dict(model_type="opt", vocab_size=vocab, hidden_size=24, ffn_dim=48, num_hidden_layers=r(1, 3),
                    num_attention_heads=[2, 4][r(0, 1)], word_embed_proj_dim=24, max_position_embeddings=64,
                    bos_token_id=2, eos_token_id=3, pad_token_id=1)
    else:
        tcfg = dict(model_type="t5", vocab_size=vocab, d_model=24, d_kv=6, d_ff=40, num_layers=r(1, 2),
                    num_decoder_layers=r(1, 2), num_heads=4, feed_forward_proj="gated-gelu", tie_word_embeddings=False,
                    relative_attention_num_buckets=8, relative_attention_max_distance=16, decoder_start_token_id=0,
                    eos_token_id=1, pad_token_id=0, bos_token_id=1)
    Config = InstructBlipConfig if instruct else Blip2Config
    Model = InstructBlipForConditionalGeneration if instruct else Blip2ForConditionalGeneration
    config = Config(vision_config=vcfg, qformer_config=qcfg, text_config=tcfg, num_query_tokens=q,
                    image_token_index=image_token)
    model = Model(config).eval()
    overwrite(model, g)

    b, t = 2, 5
    pixel_values = torch.randn(b, 3, 16, 16, generator=g)
    prompt = torch.randint(4, vocab - 2, (b, t), generator=g)
    mask = torch.ones(b, t, dtype=torch.long)
    mask[1, t - 2:] = 0
    pad = tcfg["pad_token_id"]
    prompt[1, t - 2:] = pad
    if lm == "opt":
        prompt[:, 0] = tcfg["bos_token_id"]
    input_ids = torch.cat([torch.full((b, q), image_token), prompt], dim=1)
    attention_mask = torch.cat([torch.ones(b, q, dtype=torch.long), mask], dim=1)
    if lm == "opt":
        labels = input_ids.masked_fill(attention_mask == 0, -100)
        labels[:, :q] = -100
    else:
        labels = torch.randint(4, vocab - 2, (b, 4), generator=g)
        labels[:, -1] = tcfg["eos_token_id"]
        labels[1, 2:] = -100
    extra = {}
    if instruct:
        qids = torch.randint(1, 60, (b, 4), generator=g)
        qmask = torch.ones(b, 4, dtype=torch.long)
        qmask[1, 3:] = 0
        qids[1, 3:] = 0
        extra = dict(qformer_input_ids=qids, qformer_attention_mask=qmask)

    out = model(pixel_values=pixel_values, input_ids=input_ids, attention_mask=attention_mask, labels=labels,
                output_hidden_states=True, **extra)
    rec = {
        "vision.last_hidden_state": out.vision_outputs.last_hidden_state,
        "qformer.last_hidden_state": out.qformer_outputs.last_hidden_state,
        "language_projection.output": model.language_projection(out.qformer_outputs.last_hidden_state[:, :q]),
        "lm.logits": out.logits,
        "lm.loss": out.loss,
    }
    greedy = model.generate(pixel_values=pixel_values, input_ids=input_ids, attention_mask=attention_mask,
                            max_new_tokens=5, num_beams=1, do_sample=False, output_scores=True,
                            return_dict_in_generate=True, **extra)
    rec["generate.sequences"] = greedy.sequences
    rec["generate.scores"] = torch.stack(greedy.scores, dim=1)
    beam = model.generate(pixel_values=pixel_values, input_ids=input_ids, attention_mask=attention_mask,
                          max_new_tokens=5, num_beams=3, do_sample=False, output_scores=True,
                          return_dict_in_generate=True, **extra)
    rec["beam.sequences"] = beam.sequences
    rec["beam.sequences_scores"] = beam.sequences_scores

    d = os.path.join(out_dir, f"blip2_{case}")
    os.makedirs(d, exist_ok=True)
    model.save_pretrained(d, safe_serialization=True)
    save_file({"pixel_values": pixel_values, "input_ids": input_ids, "attention_mask": attention_mask, "labels": labels,
               **extra}, os.path.join(d, "inputs.safetensors"))
    save_file({k: v.contiguous() for k, v in rec.items()}, os.path.join(d, "outputs.safetensors"))
    meta = dict(torch=torch.__version__, transformers=transformers.__version__, instruct=instruct, lm=lm,
                num_query_tokens=q, image_token_index=image_token, vision=vcfg, qformer=qcfg, text=tcfg,
                generation=dict(max_new_tokens=5, greedy=dict(num_beams=1), beam=dict(num_beams=3)))
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print("case", case, json.dumps(meta))
