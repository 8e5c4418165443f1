"""Checks that a model directory written by qformer-ts opens in HF transformers and gives the same
Q-Former outputs as `qf run` did.

Usage: python check_hf_loads.py MODEL_DIR INPUTS.safetensors QF_RUN_OUTPUT.safetensors
Prints the max abs difference per output and exits 1 if any exceeds 1e-4.
"""
import sys

import torch
from safetensors.torch import load_file
from transformers import Blip2ForImageTextRetrieval

model_dir, inputs_path, ours_path = sys.argv[1:4]
torch.set_grad_enabled(False)
model = Blip2ForImageTextRetrieval.from_pretrained(model_dir, attn_implementation="eager").eval()
x = load_file(inputs_path)
ours = load_file(ours_path)
img = x["image_embeds"].float()
ids = x["input_ids"].long()
mask = x["attention_mask"].long()
b = img.shape[0]
qt = model.query_tokens.expand(b, -1, -1)
q = qt.shape[1]
ref = {}
ref["query_output"] = model.qformer(query_embeds=qt, encoder_hidden_states=img)[0]
text = model.qformer(query_embeds=model.embeddings(input_ids=ids), query_length=0, attention_mask=mask)[0]
ref["text_output"] = text
mm = model.qformer(query_embeds=model.embeddings(input_ids=ids, query_embeds=qt), query_length=q,
                   attention_mask=torch.cat([torch.ones(b, q, dtype=torch.long), mask], 1), encoder_hidden_states=img)[0]
ref["multimodal_output"] = mm
ref["itm_logits"] = model.itm_head(mm[:, :q]).mean(1)
image_feats = torch.nn.functional.normalize(model.vision_projection(ref["query_output"]), dim=-1)
text_feat = torch.nn.functional.normalize(model.text_projection(text[:, 0]), dim=-1)
ref["image_feats"], ref["text_feat"] = image_feats, text_feat
ref["itc_logits"] = torch.matmul(image_feats, text_feat.t()).max(dim=1)[0]
worst = 0.0
for k, v in ref.items():
    if k not in ours:
        print(f"{k}: missing from qf output")
        worst = float("inf")
        continue
    d = (ours[k].float() - v).abs().max().item()
    worst = max(worst, d)
    print(f"{k:20s} shape {list(v.shape)} max abs diff {d:.3g}")
print("OK" if worst <= 1e-4 else "MISMATCH")
sys.exit(0 if worst <= 1e-4 else 1)
