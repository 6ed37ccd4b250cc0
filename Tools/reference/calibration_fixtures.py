#!/usr/bin/env python3
"""Reference for GPTQ calibration statistics (tendon-train convert --calibration): H = E[xᵀx] of every
nn.Linear input in the backbone (and vision tower) of the Qwen-VLA fixtures, collected with forward
pre-hooks on transformers' Qwen3.5 while it computes the prefix hidden states of one fixture case.
These inputs do not depend on the action noise, so Tendon's HessianCollector must reproduce them.

Writes Tests/Fixtures/qwen_vla/{text_a,vlm_c}/calibration_hessians.safetensors: one float64 [n, n] tensor
per weight name, plus `rows` (float64 [1] per weight, as NAME.rows).

Usage: /opt/tendon-ref/bin/python Tools/reference/calibration_fixtures.py
"""
import json
import os
import sys

import torch
from PIL import Image
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qwen_vla  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "Fixtures", "qwen_vla")


def collect(name, case_key):
    folder = os.path.join(ROOT, name)
    vla = qwen_vla.QwenVLA(folder)
    with open(os.path.join(folder, "cases.json")) as f:
        case = next(c for c in json.load(f) if c["key"] == case_key)
    emb = vla.embodiment(case["tag"])
    sums, rows, hooks = {}, {}, []
    for module_name, module in vla.backbone.named_modules():
        if not isinstance(module, torch.nn.Linear) or module_name.endswith("lm_head"):
            continue
        weight = module_name + ".weight"

        def hook(mod, args, weight=weight):
            x = args[0].detach().reshape(-1, args[0].shape[-1]).double()
            sums[weight] = sums.get(weight, 0) + x.T @ x
            rows[weight] = rows.get(weight, 0) + x.shape[0]
        hooks.append(module.register_forward_pre_hook(hook))
    pixel_values = grid = None
    tokens = []
    if emb["cameras"]:
        images = [Image.open(os.path.join(folder, c + ".png")).convert("RGB") for c in emb["cameras"]]
        out = vla.processor()(images, return_tensors="pt")
        pixel_values, grid = out["pixel_values"], out["image_grid_thw"]
        merge = vla.config["vision_config"]["spatial_merge_size"]
        tokens = [int(t * h * w) // merge ** 2 for t, h, w in grid.tolist()]
    ids = torch.tensor(vla.tokenizer.encode(vla.prefix(emb, case["instruction"], tokens), add_special_tokens=False).ids)
    with torch.no_grad():
        vla.hidden(ids, pixel_values, grid)
    for h in hooks:
        h.remove()
    tensors = {}
    for weight, s in sums.items():
        tensors[weight] = (s / rows[weight]).contiguous()
        tensors[weight + ".rows"] = torch.tensor([float(rows[weight])], dtype=torch.float64)
    path = os.path.join(folder, "calibration_hessians.safetensors")
    save_file(tensors, path, metadata={"case": case_key})
    print(f"{path}: {len(sums)} weights, {os.path.getsize(path)} bytes")


def main():
    collect("text_a", "case0")
    collect("vlm_c", "case0")


if __name__ == "__main__":
    main()
