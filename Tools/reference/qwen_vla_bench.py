#!/usr/bin/env python3
"""Reference side of `tendon bench act`: the same policy timed in PyTorch fp32 and, for the action expert,
in ONNX Runtime (fp32 and `quantize_dynamic` int8), with the context keys/values computed once per
observation in every variant, as Tendon does.

  build --out DIR [--init fixture|library]
                         random reference-config checkpoint (qwen_vla.py layout): backbone hidden 512,
                         8 layers, vision depth 4, expert 512 × 6, K 32, H 50, 10 steps; embodiment
                         `aloha` with one camera `cam_high` (a 224×224 PNG in DIR), noise.safetensors,
                         and calibration/calibration.jsonl (8 other observations for GPTQ). --init picks the
                         weights: the fixtures' unit-gain randomizer (default; the harsher case for
                         quantization) or the libraries' own initialisers.
  time --model DIR ...   prints one JSON line: median/p90 ms of preprocessing, backbone, expert and total
                         for PyTorch; expert median/p90 for ORT fp32/int8 and their chunk error (max |Δa'|
                         vs PyTorch fp32); writes PyTorch's chunk to --chunk-out for the Swift side.

Usage: /opt/tendon-ref/bin/python Tools/reference/qwen_vla_bench.py build --out /tmp/vla-ref
       /opt/tendon-ref/bin/python Tools/reference/qwen_vla_bench.py time --model /tmp/vla-ref --threads 2
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qwen_vla  # noqa: E402

REFERENCE = dict(
    name="bench", tied=True, layout="conditional", prefix_template=None,
    embodiments=[qwen_vla.aloha(tag="aloha", chunk=50, cameras=("cam_high",))],
    images=dict(cam_high=(224, 224)),
    text=dict(vocab_size=1808, hidden_size=512, intermediate_size=1536, num_hidden_layers=8,
              layer_types=["linear_attention", "linear_attention", "linear_attention", "full_attention"] * 2,
              num_attention_heads=8, num_key_value_heads=2, head_dim=64, linear_num_key_heads=4,
              linear_num_value_heads=8, linear_key_head_dim=64, linear_value_head_dim=64, linear_conv_kernel_dim=4,
              rope_parameters=dict(rope_type="default", rope_theta=10000000.0, partial_rotary_factor=0.25,
                                   mrope_section=[3, 3, 2], mrope_interleaved=True)),
    expert=dict(action_dim=32, hidden_size=512, num_layers=6, num_heads=8, head_dim=64, intermediate_size=2048,
                context_dim=512, rope_theta=10000.0, num_inference_steps=10),
)
VISION = dict(depth=4, hidden_size=256, intermediate_size=1024, num_heads=4, in_channels=3, patch_size=16,
              spatial_merge_size=2, temporal_patch_size=2, num_position_embeddings=64)
PREPROCESSOR = dict(min_pixels=56 * 56, max_pixels=224 * 224, patch_size=16, temporal_patch_size=2, merge_size=2,
                    image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5], image_processor_type="Qwen2VLImageProcessor")
INSTRUCTION = "Pick up the red cube and place it in the bowl."


def build(out, init="fixture"):
    qwen_vla.VISION = VISION
    qwen_vla.PREPROCESSOR = PREPROCESSOR
    if init == "library":
        qwen_vla.randomize = lambda module, scale=1.0: None
    torch.manual_seed(7)
    backbone, expert = qwen_vla.build_folder(REFERENCE, out, seed=7)
    qwen_vla.make_images(REFERENCE, out, torch.Generator().manual_seed(8))
    from safetensors.torch import save_file
    noise = torch.randn(50, 32, generator=torch.Generator().manual_seed(9))
    save_file({"noise": noise}, os.path.join(out, "noise.safetensors"))
    write_calibration(out)
    print(json.dumps({"model": out, "image": os.path.join(out, "cam_high.png"),
                      "noise": os.path.join(out, "noise.safetensors")}))


CALIBRATION_INSTRUCTIONS = [
    "Open the drawer and take out the spoon.", "Fold the towel in half.", "Stack the green block on the blue one.",
    "Wipe the table with the sponge.", "Put the marker in the cup.", "Hand the screwdriver to the left arm.",
    "Close the laptop lid.", "Pour the beans into the bowl."]


def write_calibration(out, count=8):
    """GPTQ calibration set for `tendon-train convert --calibration`: other instructions, other images (same
    generator family as the camera image, other seeds) and other noise seeds than the timed observation."""
    cal = os.path.join(out, "calibration")
    os.makedirs(cal, exist_ok=True)
    gen = torch.Generator().manual_seed(123)
    lines = []
    for i in range(count):
        spec = dict(images={f"cal_{i}": REFERENCE["images"]["cam_high"]})
        qwen_vla.make_images(spec, cal, gen)
        lines.append(json.dumps({"embodiment": "aloha", "instruction": CALIBRATION_INSTRUCTIONS[i % len(CALIBRATION_INSTRUCTIONS)],
                                 "images": {"cam_high": f"cal_{i}.png"}, "seed": 1000 + i}))
    with open(os.path.join(cal, "calibration.jsonl"), "w") as f:
        f.write("\n".join(lines) + "\n")


def stats(samples):
    s = sorted(samples)
    return dict(median_ms=1000 * statistics.median(s), p90_ms=1000 * s[min(len(s) - 1, int(round(0.9 * (len(s) - 1))))])


class StepModule(torch.nn.Module):
    """One velocity evaluation with the cached context K/V as inputs (what ORT runs per step)."""
    def __init__(self, expert):
        super().__init__()
        self.expert = expert

    def forward(self, y, temb, *kv):
        e = self.expert
        cfg = e.cfg
        H, T = y.shape[0], kv[0].shape[0]
        d = cfg["hidden_size"]
        c = e.time_embed(temb)
        sc = F.silu(c)
        x = e.action_in(y)
        cos, sin = qwen_vla.rope_tables(torch.arange(T, T + H), cfg["head_dim"], cfg["rope_theta"])
        for i, b in enumerate(e.blocks):
            kc, vc = kv[2 * i], kv[2 * i + 1]
            a = b.attn
            sa, ca, ga, sm, cm, gm = b.modulation(sc).split(d)
            u = qwen_vla.layer_norm(x) * (1 + ca) + sa
            q = qwen_vla.apply_rope(a.q_norm(a.q_proj(u).view(H, a.h, a.hd)), cos, sin)
            k = qwen_vla.apply_rope(a.k_norm(a.k_proj(u).view(H, a.h, a.hd)), cos, sin)
            v = a.v_proj(u).view(H, a.h, a.hd)
            keys = torch.cat([kc, k]).transpose(0, 1)
            values = torch.cat([vc, v]).transpose(0, 1)
            scores = q.transpose(0, 1) @ keys.transpose(1, 2) * a.hd ** -0.5
            out = (scores.softmax(-1) @ values).transpose(0, 1).reshape(H, a.h * a.hd)
            x = x + ga * a.o_proj(out)
            x = x + gm * b.mlp(qwen_vla.layer_norm(x) * (1 + cm) + sm)
        shift, scale = e.final.modulation(sc).split(d)
        return e.final.proj(qwen_vla.layer_norm(x) * (1 + scale) + shift)


class ContextModule(torch.nn.Module):
    def __init__(self, expert):
        super().__init__()
        self.expert = expert

    def forward(self, V):
        _, kv = self.expert.context(V)
        return tuple(t for pair in kv for t in pair)


def time_all(args):
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from PIL import Image
    from safetensors.torch import load_file, save_file
    torch.set_num_threads(args.threads)
    vla = qwen_vla.QwenVLA(args.model)
    emb = vla.embodiment(args.embodiment)
    images = {n: Image.open(p).convert("RGB") for n, p in (s.split("=", 1) for s in args.image)}
    noise = load_file(args.noise)["noise"] if args.noise else torch.randn(emb["chunk_size"], vla.config["action_expert"]["action_dim"])
    N = args.steps or vla.config["action_expert"]["num_inference_steps"]
    c = len(emb["action_names"])
    merge = vla.config.get("vision_config", {}).get("spatial_merge_size", 2)
    proc = vla.processor() if emb["cameras"] else None

    def observe():
        t0 = time.perf_counter()
        pv = grid = None
        tokens = []
        if emb["cameras"]:
            out = proc([images[n] for n in emb["cameras"]], return_tensors="pt")
            pv, grid = out["pixel_values"], out["image_grid_thw"]
            tokens = [int(t * h * w) // merge ** 2 for t, h, w in grid.tolist()]
        ids = torch.tensor(vla.tokenizer.encode(vla.prefix(emb, args.instruction, tokens), add_special_tokens=False).ids)
        t1 = time.perf_counter()
        V = vla.hidden(ids, pv, grid)
        t2 = time.perf_counter()
        return V, t1 - t0, t2 - t1

    pre, bb, ex, tot = [], [], [], []
    with torch.no_grad():
        for it in range(args.iterations + 1):
            start = time.perf_counter()
            V, p, b = observe()
            t2 = time.perf_counter()
            _, kv = vla.expert.context(V)
            Y, _ = vla.expert.sample(noise, kv, c, N)
            t3 = time.perf_counter()
            if it == 0:
                continue  # warm-up
            pre.append(p); bb.append(b); ex.append(t3 - t2); tot.append(t3 - start)
    torch_chunk = Y.clone()
    if args.chunk_out:
        save_file({"actions_normalized": torch_chunk.contiguous()}, args.chunk_out)
    result = dict(threads=args.threads, steps=N, tokens=int(V.shape[0]), iterations=args.iterations,
                  torch=dict(preprocessing=stats(pre), backbone=stats(bb), expert=stats(ex), total=stats(tot)))

    # ONNX Runtime: the expert only (context K/V once, then N steps), fp32 and dynamic int8.
    with torch.no_grad():
        V = V.detach()
        workdir = tempfile.mkdtemp(prefix="tendon-onnx-")
        ctx_path, step_path = os.path.join(workdir, "context.onnx"), os.path.join(workdir, "step.onnx")
        L = len(vla.expert.blocks)
        kv_names = [f"{kind}{i}" for i in range(L) for kind in ("k", "v")]
        torch.onnx.export(ContextModule(vla.expert), (V,), ctx_path, input_names=["V"], output_names=kv_names,
                          opset_version=17, dynamo=False)  # static T: this prefix
        kv_flat = ContextModule(vla.expert)(V)
        temb0 = qwen_vla.time_embedding(1.0)
        torch.onnx.export(StepModule(vla.expert), (noise, temb0, *kv_flat), step_path,
                          input_names=["y", "temb", *kv_names], output_names=["v"], opset_version=17, dynamo=False)
    variants = {"fp32": (ctx_path, step_path)}
    q_ctx, q_step = os.path.join(workdir, "context.int8.onnx"), os.path.join(workdir, "step.int8.onnx")
    quantize_dynamic(ctx_path, q_ctx, weight_type=QuantType.QInt8)
    quantize_dynamic(step_path, q_step, weight_type=QuantType.QInt8)
    variants["int8"] = (q_ctx, q_step)
    temb = [qwen_vla.time_embedding(1.0 - k / N).numpy() for k in range(N)]
    Vn = V.numpy()
    for name, (cp, sp) in variants.items():
        so = ort.SessionOptions()
        so.intra_op_num_threads = args.threads
        so.inter_op_num_threads = 1
        cs = ort.InferenceSession(cp, so, providers=["CPUExecutionProvider"])
        ss = ort.InferenceSession(sp, so, providers=["CPUExecutionProvider"])
        times = []
        for it in range(args.iterations + 1):
            t0 = time.perf_counter()
            kvs = cs.run(None, {"V": Vn})
            feeds = dict(zip(kv_names, kvs))
            y = noise.numpy().copy()
            y[:, c:] = 0
            for k in range(N):
                v = ss.run(None, {"y": y, "temb": temb[k], **feeds})[0]
                y = y - v / np.float32(N)
                y[:, c:] = 0
            if it:
                times.append(time.perf_counter() - t0)
        result[f"ort_{name}"] = dict(expert=stats(times), chunk_max_abs_err=float(np.abs(y - torch_chunk.numpy()).max()))
    print(json.dumps(result))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--out", required=True)
    b.add_argument("--init", choices=("fixture", "library"), default="fixture",
                   help="fixture: qwen_vla.randomize (unit-gain weights, non-default norms and biases; the default); "
                        "library: the libraries' own initialisers (transformers' Qwen3.5 _init_weights, "
                        "std 0.02; torch.nn.Linear defaults for the expert)")
    t = sub.add_parser("time")
    t.add_argument("--model", required=True)
    t.add_argument("--embodiment", default="aloha")
    t.add_argument("--instruction", default=INSTRUCTION)
    t.add_argument("--image", action="append", default=[])
    t.add_argument("--noise")
    t.add_argument("--steps", type=int)
    t.add_argument("--iterations", type=int, default=10)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--chunk-out")
    args = ap.parse_args()
    if args.cmd == "build":
        build(args.out, args.init)
    else:
        time_all(args)


if __name__ == "__main__":
    main()
