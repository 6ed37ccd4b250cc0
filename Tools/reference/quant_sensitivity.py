#!/usr/bin/env python3
"""Where quantization error comes from, on the reference config (`qwen_vla_bench.py build`): the PyTorch
reference policy with weights replaced by their round trip through Tendon's own quantizers (the C row
quantizers of Sources/CTendonKernels, loaded with ctypes) and, optionally, activations rounded per 32 values
the way the packed GEMM rounds them. Prints max |Δa'| against the f32 chunk of the timed observation.

  activations   Q8_0 weights alone, int8 activations alone, both, and 15-bit activations (why Q8_0 weights
                take `ActivationQuantization.wide`).
  families      one tensor family at a time at Q4_K, the rest Q8_0 (how `HFToGGUFConverter.keepsEightBit`
                was chosen).
  backbone      the q4_k mix with the backbone's Q4_K weights at Q4_K, at Q5_K, and replaced by weight +
                Gaussian noise at the rate-distortion bound of an ideal 4.5- and 4.0-bit code for Gaussian
                weights (relative RMS 2^-4.5, 2^-4): what any 4-bit-class code could reach there. Round to
                nearest (no GPTQ); the timed observation and three others.

Build the quantizers first:
  cc -O2 -shared -fPIC -mavx2 -mf16c -mfma Sources/CTendonKernels/tk_numerics.c Sources/CTendonKernels/tk_dot.c \\
     -I Sources/CTendonKernels/include -o /tmp/libtk.so
Usage: /opt/tendon-ref/bin/python Tools/reference/quant_sensitivity.py --model /tmp/tendon-bench-act/hf activations|families|backbone
"""
import argparse
import ctypes
import os
import re
import sys

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qwen_vla  # noqa: E402
from qwen_vla_bench import INSTRUCTION  # noqa: E402

BLOCK = {"q8_0": (32, 34), "q4_k": (256, 144), "q5_k": (256, 176)}
KEEP_F16 = ("context_proj", "time_embed", "action_in", "final", "modulation")  # HFToGGUFConverter.keepsHalfPrecision


def roundtrip(lib, w, kind):
    if kind == "f16":
        return w.half().float()
    if kind.startswith("noise:"):  # relative RMS error of an ideal code, as additive Gaussian noise
        gen = torch.Generator().manual_seed(5)
        return w + torch.randn(w.shape, generator=gen) * float(kind[6:]) * w.pow(2).mean().sqrt()
    n = w.shape[1]
    elems, nbytes = BLOCK[kind]
    if n % elems:
        return w.half().float()
    x = np.ascontiguousarray(w.numpy(), dtype=np.float32)
    out = np.empty_like(x)
    buf = (ctypes.c_uint8 * (n // elems * nbytes))()
    fp = ctypes.POINTER(ctypes.c_float)
    quantize, dequantize = getattr(lib, f"tk_quantize_row_{kind}"), getattr(lib, f"tk_dequantize_row_{kind}")
    for r in range(x.shape[0]):
        quantize(x[r].ctypes.data_as(fp), buf, ctypes.c_int64(n))
        dequantize(buf, out[r].ctypes.data_as(fp), ctypes.c_int64(n))
    return torch.from_numpy(out)


def round_activations(x, bits):
    """Per 32 values: scale amax / (2^(bits-1) - 1), round to nearest (the packed GEMM's activations)."""
    n = x.shape[-1]
    if bits is None or n % 32:
        return x
    blocks = x.reshape(-1, n // 32, 32)
    top = (1 << (bits - 1)) - 1
    d = blocks.abs().amax(-1, keepdim=True) / top
    q = torch.where(d > 0, torch.round(blocks / torch.where(d > 0, d, torch.ones_like(d))), torch.zeros_like(blocks))
    return (q.clamp(-top, top) * d).reshape(x.shape)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--lib", default="/tmp/libtk.so")
    ap.add_argument("what", choices=["activations", "families", "backbone"])
    args = ap.parse_args()
    lib = ctypes.CDLL(args.lib)
    vla = qwen_vla.QwenVLA(args.model)
    images = {"cam_high": Image.open(os.path.join(args.model, "cam_high.png")).convert("RGB")}
    noise = load_file(os.path.join(args.model, "noise.safetensors"))["noise"]
    observations = [(INSTRUCTION, noise, images)]
    if args.what == "backbone":
        gen = torch.Generator().manual_seed(999)
        for text in ["Pick up the cup and put it on the plate.", "Push the red button.", "Lift the lid of the box."]:
            pixels = (torch.rand(224, 224, 3, generator=gen) * 255).to(torch.uint8).numpy()
            observations.append((text, torch.randn(50, 32, generator=gen), {"cam_high": Image.fromarray(pixels)}))
    references = [vla.act("aloha", t, z, 10, im)["actions_normalized"] for t, z, im in observations]
    linears = {f"bb.{n}": m for n, m in vla.backbone.named_modules() if isinstance(m, torch.nn.Linear)}
    linears.update({f"ex.{n}": m for n, m in vla.expert.named_modules() if isinstance(m, torch.nn.Linear)})
    original = {n: m.weight.data.clone() for n, m in linears.items()}
    cache = {}

    def shipped(kind):
        return lambda n: "f16" if n.startswith("ex.") and any(k in n for k in KEEP_F16) else kind

    def run(kind_of, bits_of, label):
        hooks = []
        for n, m in linears.items():
            kind = kind_of(n)
            if kind != "f32":
                cache.setdefault((n, kind), None)
                if cache[(n, kind)] is None:
                    cache[(n, kind)] = roundtrip(lib, original[n], kind)
                m.weight.data = cache[(n, kind)]
            bits = bits_of(n)
            if bits:
                hooks.append(m.register_forward_pre_hook(lambda mod, a, b=bits: (round_activations(a[0], b),)))
        errors = [(vla.act("aloha", t, z, 10, im)["actions_normalized"] - ref).abs().max().item()
                  for (t, z, im), ref in zip(observations, references)]
        for h in hooks:
            h.remove()
        for n, m in linears.items():
            m.weight.data = original[n]
        print(f"{label:62s} max |Δa'| " + " ".join(f"{e:.4f}" for e in errors), flush=True)

    if args.what == "activations":
        run(shipped("q8_0"), lambda n: None, "Q8_0 weights, f32 activations")
        run(lambda n: "f32", lambda n: 8, "f32 weights, int8 activations")
        run(shipped("q8_0"), lambda n: 8, "Q8_0 weights, int8 activations")
        run(shipped("q8_0"), lambda n: 16, "Q8_0 weights, 15-bit activations")
    elif args.what == "backbone":
        eight = ("mlp.fc1", "mlp.fc2", "attn.v_proj", "attn.o_proj", "merger", "self_attn.v_proj")  # keepsEightBit
        def mix(backbone):
            def kind(n):
                if shipped("q4_k")(n) == "f16":
                    return "f16"
                if any(k in n for k in eight):
                    return "q8_0"
                return backbone if n.startswith("bb.model.language_model.layers.") else "q4_k"
            return kind
        for backbone, label in [("q4_k", "Q4_K"), ("q5_k", "Q5_K"), (f"noise:{2 ** -4.5}", "ideal 4.5-bit code (noise 0.044)"),
                                (f"noise:{2 ** -4.0}", "ideal 4.0-bit code (noise 0.0625)")]:
            run(mix(backbone), lambda n: None, f"q4_k mix, backbone {label}")
    else:
        families = {}
        for n in linears:
            families.setdefault(re.sub(r"\.\d+\.", ".*.", n), []).append(n)
        run(shipped("q8_0"), lambda n: None, "all Q8_0")
        for family, names in sorted(families.items()):
            if shipped("q4_k")(names[0]) != "q4_k" or family.endswith("lm_head"):
                continue
            members = set(names)
            size = sum(original[n].numel() for n in names) / 1e6
            run(lambda n: "q4_k" if n in members else shipped("q8_0")(n), lambda n: None, f"{family} at Q4_K ({size:.2f}M)")


if __name__ == "__main__":
    main()
