"""Runs ONNX files exported by `qf export-onnx` in Python's onnxruntime (and the onnx checker, where
installed) on the golden public_small inputs and compares with the HF reference outputs.

Usage: python check_onnx_python.py ONNX_DIR GOLDEN_CASE_DIR
"""
import json
import os
import sys

import numpy as np
from safetensors.numpy import load_file

onnx_dir, case_dir = sys.argv[1:3]
inputs = load_file(os.path.join(case_dir, "inputs.safetensors"))
golden = load_file(os.path.join(case_dir, "outputs.safetensors"))
manifest = json.load(open(os.path.join(onnx_dir, "qformer_onnx.json")))
ref = {
    "query_output": "query_only.last_hidden_state",
    "text_output": "text_only.last_hidden_state",
    "multimodal_output": "multimodal.last_hidden_state",
    "itm_logits": "itm.logits_per_image",
    "itc_logits": "itc.logits_per_image",
    "image_feats": "itc.image_embeds",
    "text_feat": "itc.text_embeds",
    "language_projection": "language_projection.output",
}
try:
    import onnx

    for part in manifest["parts"]:
        onnx.checker.check_model(os.path.join(onnx_dir, part["file"]), full_check=True)
    print("onnx.checker: all parts valid (onnx", onnx.__version__ + ")")
except ImportError:
    print("onnx not installed: checker skipped")

import onnxruntime as ort

print("onnxruntime", ort.__version__)
worst = 0.0
for part in manifest["parts"]:
    sess = ort.InferenceSession(os.path.join(onnx_dir, part["file"]), providers=["CPUExecutionProvider"])
    feeds = {}
    for i in sess.get_inputs():
        x = inputs[i.name]
        feeds[i.name] = x.astype(np.int64) if "int64" in i.type else x.astype(np.float32)
    outs = sess.run(None, feeds)
    for meta, value in zip(sess.get_outputs(), outs):
        d = float(np.abs(value - golden[ref[meta.name]]).max())
        worst = max(worst, d)
        print(f"{part['part']:10s} {meta.name:20s} {list(value.shape)} max abs diff vs HF {d:.3g}")
print("OK" if worst <= 1e-4 else "MISMATCH")
sys.exit(0 if worst <= 1e-4 else 1)
