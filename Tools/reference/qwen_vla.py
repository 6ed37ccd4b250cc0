#!/usr/bin/env python3
"""Reference implementation of DESIGN §3's action side (PyTorch, on top of transformers' Qwen3.5): the DiT
action expert, the flow sampler, the embodiment prompt and prefix, q01/q99 normalization and the training
loss. It builds tiny random checkpoints and records what they compute, so Tendon's Swift side is checked
without Python at test time.

For every config in CONFIGS this writes Tests/Fixtures/qwen_vla/<name>/:
  config.json       save_pretrained's config + "action_expert", "embodiments" (+ "prefix_template")
  model.safetensors backbone (save_pretrained names) + action_expert.* tensors, f32 (vlm_k: BF16)
  tokenizer.json    the trained Qwen-style tokenizer of Tests/Fixtures/tokenizer (special tokens included)
  cases.json        per case: key, tag, instruction, steps (null = config), prompt, prefix, input_ids
  reference.safetensors, per case key:
      <key>.noise [H,K] (padded channels deliberately non-zero: the sampler must zero them),
      <key>.context [T,d] (context_proj output), <key>.velocity0 [H,K] (first Euler step's velocity),
      <key>.actions_normalized [H,K], <key>.actions [H,c]

Contract points fixed here (Swift follows them):
  * the time embedding is evaluated in float64 from the float32 τ and rounded to float32 once;
  * τ_k = float32(1 − k/N);
  * prefix_template holds `{images}` (the camera blocks, config order, no separator) and `{prompt}`
    (the embodiment prompt); substitution is one left-to-right pass, so braces in the instruction stay.

Usage: /opt/tendon-ref/bin/python Tools/reference/qwen_vla.py [--out Tests/Fixtures/qwen_vla]
The module is also imported by qwen_vla_bench.py.
"""
import argparse
import json
import math
import os
import shutil

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

DEFAULT_PREFIX_TEMPLATE = "<|im_start|>user\n{images}{prompt}<|im_end|>\n<|im_start|>assistant\n"
PROMPT = ("The robot is {robot_tag} with {arms}{waist}{base}. The control frequency is {fps} Hz. "
          "Please predict the next {chunk_size} control actions to execute the following task: {instruction}.")
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TOKENIZER = os.path.join(REPO, "Tests/Fixtures/tokenizer/qwen3_5_merges_strings.json")


# ---------------------------------------------------------------- prompt, prefix, normalization

def embodiment_prompt(emb, instruction):
    if emb["arms"] not in ("single", "dual"):
        raise ValueError(f"arms must be single or dual, found {emb['arms']!r}")
    if instruction.endswith("."):
        instruction = instruction[:-1]
    return PROMPT.format(robot_tag=emb["robot_tag"], arms="single arm" if emb["arms"] == "single" else "dual arms",
                         waist=", waist" if emb.get("waist") else "",
                         base=", and mobile base" if emb.get("mobile_base") else "",
                         fps=int(emb["fps"]), chunk_size=int(emb["chunk_size"]), instruction=instruction)


def camera_block(image_tokens):
    return "<|vision_start|>" + "<|image_pad|>" * image_tokens + "<|vision_end|>"


def render_prefix(template, images, prompt):
    """One left-to-right pass over the template: `{images}` and `{prompt}` are replaced, nothing else."""
    out, i = [], 0
    while i < len(template):
        if template.startswith("{images}", i):
            out.append(images); i += len("{images}")
        elif template.startswith("{prompt}", i):
            out.append(prompt); i += len("{prompt}")
        else:
            out.append(template[i]); i += 1
    return "".join(out)


def normalize(a, q01, q99):
    return torch.clamp(2 * (a - q01) / (q99 - q01 + 1e-6) - 1, -1, 1)


def unnormalize(y, q01, q99):
    return (y + 1) / 2 * (q99 - q01 + 1e-6) + q01


# ---------------------------------------------------------------- the action expert

class RMSNorm(nn.Module):
    """Per-head RMSNorm, weight used as is (not the backbone's 1+w), eps 1e-6."""
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class TwoLayer(nn.Module):
    def __init__(self, i, d):
        super().__init__()
        self.fc1 = nn.Linear(i, d)
        self.fc2 = nn.Linear(d, d)

    def forward(self, x):
        return self.fc2(F.silu(self.fc1(x)))


class Attention(nn.Module):
    def __init__(self, d, h, hd):
        super().__init__()
        self.h, self.hd = h, hd
        self.q_proj = nn.Linear(d, h * hd)
        self.k_proj = nn.Linear(d, h * hd)
        self.v_proj = nn.Linear(d, h * hd)
        self.o_proj = nn.Linear(h * hd, d)
        self.q_norm = RMSNorm(hd)
        self.k_norm = RMSNorm(hd)


class MLP(nn.Module):
    def __init__(self, d, ff):
        super().__init__()
        self.fc1 = nn.Linear(d, ff)
        self.fc2 = nn.Linear(ff, d)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, d, h, hd, ff):
        super().__init__()
        self.modulation = nn.Linear(d, 6 * d)
        self.attn = Attention(d, h, hd)
        self.mlp = MLP(d, ff)


class Final(nn.Module):
    def __init__(self, d, K):
        super().__init__()
        self.modulation = nn.Linear(d, 2 * d)
        self.proj = nn.Linear(d, K)


def layer_norm(x):
    return F.layer_norm(x, (x.shape[-1],), eps=1e-6)


def rope_tables(positions, hd, theta):
    """HF Llama/Qwen default rotary: inv_freq in f32, cos/sin of [freqs, freqs]."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    freqs = positions.float()[:, None] * inv_freq[None, :]
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos(), emb.sin()


def apply_rope(x, cos, sin):
    """x [N, h, hd]; rotate-half over the whole head."""
    half = x.shape[-1] // 2
    rot = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos[:, None, :] + rot * sin[:, None, :]


def time_embedding(tau):
    """[cos(1000τ·f_0..127), sin(1000τ·f_0..127)], f_i = exp(−ln(10000)·i/128): float64, rounded once."""
    t = float(torch.tensor(tau, dtype=torch.float32))
    i = torch.arange(128, dtype=torch.float64)
    arg = 1000.0 * t * torch.exp(-math.log(10000.0) * i / 128)
    return torch.cat([arg.cos(), arg.sin()]).float()


class ActionExpert(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        d, K = cfg["hidden_size"], cfg["action_dim"]
        self.context_proj = nn.Linear(cfg["context_dim"], d)
        self.time_embed = TwoLayer(256, d)
        self.action_in = TwoLayer(K, d)
        self.blocks = nn.ModuleList(Block(d, cfg["num_heads"], cfg["head_dim"], cfg["intermediate_size"])
                                    for _ in range(cfg["num_layers"]))
        self.final = Final(d, K)

    def context(self, V):
        """Per observation: C and every block's context keys (after k_norm and RoPE) and values."""
        cfg = self.cfg
        C = self.context_proj(V)
        T = C.shape[0]
        cos, sin = rope_tables(torch.arange(T), cfg["head_dim"], cfg["rope_theta"])
        ln = layer_norm(C)
        kv = []
        for b in self.blocks:
            a = b.attn
            k = a.k_norm(a.k_proj(ln).view(T, a.h, a.hd))
            kv.append((apply_rope(k, cos, sin), a.v_proj(ln).view(T, a.h, a.hd)))
        return C, kv

    def velocity(self, Y, tau, kv):
        cfg = self.cfg
        H = Y.shape[0]
        T = kv[0][0].shape[0]
        d = cfg["hidden_size"]
        c = self.time_embed(time_embedding(tau))
        sc = F.silu(c)
        x = self.action_in(Y)
        cos, sin = rope_tables(torch.arange(T, T + H), cfg["head_dim"], cfg["rope_theta"])
        for b, (kc, vc) in zip(self.blocks, kv):
            a = b.attn
            sa, ca, ga, sm, cm, gm = b.modulation(sc).split(d)
            u = layer_norm(x) * (1 + ca) + sa
            q = apply_rope(a.q_norm(a.q_proj(u).view(H, a.h, a.hd)), cos, sin)
            k = apply_rope(a.k_norm(a.k_proj(u).view(H, a.h, a.hd)), cos, sin)
            v = a.v_proj(u).view(H, a.h, a.hd)
            keys = torch.cat([kc, k]).transpose(0, 1)      # [h, T+H, hd]
            values = torch.cat([vc, v]).transpose(0, 1)
            scores = q.transpose(0, 1) @ keys.transpose(1, 2) * a.hd ** -0.5
            out = (scores.softmax(-1) @ values).transpose(0, 1).reshape(H, a.h * a.hd)
            x = x + ga * a.o_proj(out)
            x = x + gm * b.mlp(layer_norm(x) * (1 + cm) + sm)
        shift, scale = self.final.modulation(sc).split(d)
        return self.final.proj(layer_norm(x) * (1 + scale) + shift)

    def sample(self, noise, kv, active, steps):
        """Euler from τ=1 to 0 on τ_k = 1 − k/N; channels ≥ active are zero in the noise and after every step."""
        Y = noise.clone()
        Y[:, active:] = 0
        v0 = None
        for k in range(steps):
            v = self.velocity(Y, 1.0 - k / steps, kv)
            if v0 is None:
                v0 = v
            Y = Y - v / steps
            Y[:, active:] = 0
        return Y, v0


def flow_loss(v_pred, Y0, Y1, mask, active):
    """The paper's loss: per channel the masked mean over the chunk, then the mean over the active channels.
    v_pred, Y0, Y1, mask: [B, H, K]; active: [B] channel counts."""
    err = (v_pred - (Y1 - Y0)) ** 2 * mask
    per_channel = err.sum(1) / mask.sum(1).clamp(min=1)            # [B, K]
    K = Y0.shape[-1]
    chan = (torch.arange(K)[None, :] < active[:, None]).float()
    return ((per_channel * chan).sum(1) / active.float()).mean()


def sample_training_time(batch, alpha=1.5, beta=1.0, s=0.999, generator=None):
    """Beta-based time sampling (π0 style, which the paper's SFT uses): τ = s·(1 − u), u ~ Beta(α, β), so
    noisy times near τ=1 are drawn most."""
    u = torch.distributions.Beta(alpha, beta).sample((batch,))
    return s * (1 - u)


def flow_training_step(expert, kv, Y0, noise, tau, active):
    """Y_τ = (1−τ)·Y0 + τ·Y1 with padded channels zero; returns the loss for one sample."""
    Y0 = Y0.clone(); Y0[:, active:] = 0
    Y1 = noise.clone(); Y1[:, active:] = 0
    Yt = (1 - tau) * Y0 + tau * Y1
    v = expert.velocity(Yt, tau, kv)
    mask = torch.zeros_like(Y0); mask[:, :active] = 1
    return flow_loss(v[None], Y0[None], Y1[None], mask[None], torch.tensor([active]))


# ---------------------------------------------------------------- the whole policy

class QwenVLA:
    """Backbone (transformers) + expert + tokenizer + embodiments from one folder."""
    def __init__(self, folder, backbone=None, expert=None):
        from tokenizers import Tokenizer
        from transformers import AutoConfig
        self.folder = folder
        with open(os.path.join(folder, "config.json")) as f:
            self.config = json.load(f)
        self.tokenizer = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
        if backbone is None:
            from transformers import Qwen3_5ForCausalLM, Qwen3_5ForConditionalGeneration
            cls = Qwen3_5ForConditionalGeneration if "vision_config" in self.config else Qwen3_5ForCausalLM
            backbone = cls.from_pretrained(folder, dtype=torch.float32).eval()
        self.backbone = backbone
        if expert is None:
            expert = ActionExpert(self.config["action_expert"])
            state = load_file(os.path.join(folder, "model.safetensors"))
            expert.load_state_dict({k[len("action_expert."):]: v for k, v in state.items()
                                    if k.startswith("action_expert.")})
        self.expert = expert.eval()

    def embodiment(self, tag):
        for e in self.config["embodiments"]:
            if e["tag"] == tag:
                return e
        raise KeyError(f"unknown embodiment {tag!r}; known: {[e['tag'] for e in self.config['embodiments']]}")

    def prefix(self, emb, instruction, image_tokens=()):
        template = self.config.get("prefix_template", DEFAULT_PREFIX_TEMPLATE)
        images = "".join(camera_block(n) for n in image_tokens)
        return render_prefix(template, images, embodiment_prompt(emb, instruction))

    def text_model(self):
        m = self.backbone.model
        return getattr(m, "language_model", m)

    def hidden(self, ids, pixel_values=None, grid=None):
        if pixel_values is None:
            return self.text_model()(input_ids=ids[None], use_cache=False).last_hidden_state[0]
        # Qwen3_5Model: image pads replaced by the merged vision tokens, multimodal positions (get_rope_index).
        mm = (ids == self.config["image_token_id"]).to(torch.int64)[None]  # 1 = image token, as the processor
        return self.backbone.model(input_ids=ids[None], pixel_values=pixel_values, image_grid_thw=grid,
                                   mm_token_type_ids=mm, use_cache=False).last_hidden_state[0]

    def processor(self):
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
        with open(os.path.join(self.folder, "preprocessor_config.json")) as f:
            cfg = json.load(f)
        keys = ("min_pixels", "max_pixels", "patch_size", "temporal_patch_size", "merge_size", "image_mean", "image_std")
        return Qwen2VLImageProcessorPil(**{k: cfg[k] for k in keys if k in cfg})

    @torch.no_grad()
    def act(self, tag, instruction, noise, steps=None, images=None):
        """images: camera name → PIL image; the embodiment's cameras are used in config order."""
        emb = self.embodiment(tag)
        pixel_values = grid = None
        tokens = []
        if emb["cameras"]:
            missing = [c for c in emb["cameras"] if c not in (images or {})]
            if missing:
                raise ValueError(f"embodiment {tag} needs images for {missing}")
            out = self.processor()([images[c] for c in emb["cameras"]], return_tensors="pt")
            pixel_values, grid = out["pixel_values"], out["image_grid_thw"]
            merge = self.config["vision_config"]["spatial_merge_size"]
            tokens = [int(t * h * w) // merge ** 2 for t, h, w in grid.tolist()]
        text = self.prefix(emb, instruction, tokens)
        ids = torch.tensor(self.tokenizer.encode(text, add_special_tokens=False).ids)
        V = self.hidden(ids, pixel_values, grid)
        C, kv = self.expert.context(V)
        N = steps or self.config["action_expert"]["num_inference_steps"]
        c = len(emb["action_names"])
        Y, v0 = self.expert.sample(noise, kv, c, N)
        q01, q99 = torch.tensor(emb["q01"]), torch.tensor(emb["q99"])
        actions = unnormalize(Y[:, :c], q01, q99)
        return dict(prompt=embodiment_prompt(emb, instruction), prefix=text, input_ids=ids, context=C,
                    velocity0=v0, actions_normalized=Y, actions=actions)


# ---------------------------------------------------------------- fixtures

def aloha(tag="aloha", chunk=6, fps=50, cameras=()):
    names = [f"{s}_{j}" for s in ("left", "right") for j in
             ("waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate", "gripper")]
    return dict(tag=tag, robot_tag="Mobile ALOHA", arms="dual", waist=False, mobile_base=False, fps=fps,
                chunk_size=chunk, cameras=list(cameras), action_names=names)


EMBODIMENTS_A = [
    aloha(),
    dict(tag="widowx", robot_tag="WidowX", arms="single", waist=False, mobile_base=False, fps=5, chunk_size=4,
         cameras=[], action_names=["x", "y", "z", "roll", "pitch", "yaw", "gripper"]),
    dict(tag="galaxea", robot_tag="Galaxea R1", arms="dual", waist=True, mobile_base=True, fps=15, chunk_size=7,
         cameras=[], action_names=[f"j{i}" for i in range(10)]),
    aloha(tag="aloha_cams", cameras=("cam_high", "cam_left_wrist")),
]
EMBODIMENTS_B = [
    dict(tag="tienkung", robot_tag="TienKung", arms="dual", waist=True, mobile_base=False, fps=30, chunk_size=5,
         cameras=[], action_names=[f"a{i}" for i in range(8)]),
    dict(tag="arx5", robot_tag="ARX5", arms="single", waist=False, mobile_base=True, fps=10, chunk_size=3,
         cameras=[], action_names=[f"a{i}" for i in range(5)]),
]

CONFIGS = [
    dict(name="text_a", tied=True, embodiments=EMBODIMENTS_A, prefix_template=None,
         text=dict(vocab_size=1808, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                   layer_types=["linear_attention", "full_attention"], num_attention_heads=2, num_key_value_heads=1,
                   head_dim=16, linear_num_key_heads=1, linear_num_value_heads=2, linear_key_head_dim=16,
                   linear_value_head_dim=8, linear_conv_kernel_dim=4,
                   rope_parameters=dict(rope_type="default", rope_theta=10000.0, partial_rotary_factor=0.25,
                                        mrope_section=[1, 1, 0], mrope_interleaved=True)),
         expert=dict(action_dim=14, hidden_size=32, num_layers=2, num_heads=2, head_dim=16, intermediate_size=64,
                     context_dim=32, rope_theta=10000.0, num_inference_steps=5),
         cases=[("aloha", "Fold the towel.", None), ("widowx", "put the spoon in the pot", None),
                ("galaxea", "Open the drawer..", 3)]),
    dict(name="text_b", tied=True, embodiments=EMBODIMENTS_B,
         prefix_template="<|im_start|>system\nYou control a robot.<|im_end|>\n<|im_start|>user\n{images}{prompt}"
                         "<|im_end|>\n<|im_start|>assistant\n",
         text=dict(vocab_size=1808, hidden_size=32, intermediate_size=40, num_hidden_layers=2,
                   layer_types=["full_attention", "linear_attention"], num_attention_heads=2, num_key_value_heads=2,
                   head_dim=16, linear_num_key_heads=1, linear_num_value_heads=1, linear_key_head_dim=16,
                   linear_value_head_dim=16, linear_conv_kernel_dim=3,
                   rope_parameters=dict(rope_type="default", rope_theta=1000000.0, partial_rotary_factor=0.5,
                                        mrope_section=[2, 1, 1], mrope_interleaved=True)),
         expert=dict(action_dim=8, hidden_size=32, num_layers=3, num_heads=2, head_dim=24, intermediate_size=40,
                     context_dim=32, rope_theta=100.0, num_inference_steps=4),
         cases=[("tienkung", "stack the {red} bowls", None), ("arx5", "wipe the table.", 2)]),
    dict(name="vlm_c", tied=True, layout="conditional", prefix_template=None,
         embodiments=[aloha(tag="aloha", chunk=5, cameras=("cam_high", "cam_left_wrist")),
                      dict(tag="widowx", robot_tag="WidowX", arms="single", waist=False, mobile_base=False, fps=5,
                           chunk_size=4, cameras=["cam_wrist"], action_names=["x", "y", "z", "gripper"])],
         images=dict(cam_high=(28, 20), cam_left_wrist=(16, 24), cam_wrist=(24, 24)),
         text=dict(vocab_size=1808, hidden_size=32, intermediate_size=40, num_hidden_layers=2,
                   layer_types=["linear_attention", "full_attention"], num_attention_heads=2, num_key_value_heads=1,
                   head_dim=16, linear_num_key_heads=1, linear_num_value_heads=2, linear_key_head_dim=16,
                   linear_value_head_dim=8, linear_conv_kernel_dim=4,
                   rope_parameters=dict(rope_type="default", rope_theta=10000.0, partial_rotary_factor=0.5,
                                        mrope_section=[2, 1, 1], mrope_interleaved=True)),
         expert=dict(action_dim=16, hidden_size=32, num_layers=2, num_heads=2, head_dim=16, intermediate_size=48,
                     context_dim=32, rope_theta=10000.0, num_inference_steps=3),
         cases=[("aloha", "Hand over the cube.", None), ("widowx", "close the drawer", 2)]),
    # The smallest config in which every backbone and expert block `Linear` has whole Q4_K/Q5_K rows (256 inputs),
    # so the 4-bit K-quant goal is measured on a fixture (the others are too narrow: Q4_K falls back to F16
    # there). Stored as BF16 like a Hugging Face checkpoint (half the bytes; the reference computes in f32 on
    # the BF16 values). Its vision tower stays narrow to keep the file small (its blocks fall back to F16).
    dict(name="vlm_k", tied=True, layout="conditional", prefix_template=None, bf16=True,
         embodiments=[aloha(tag="aloha", chunk=16, cameras=("cam_high",))],
         images=dict(cam_high=(96, 64)),
         vision=dict(depth=2, hidden_size=64, intermediate_size=128, num_heads=2, in_channels=3, patch_size=16,
                     spatial_merge_size=2, temporal_patch_size=2, num_position_embeddings=16),
         preprocessor=dict(min_pixels=32 * 32, max_pixels=96 * 64, patch_size=16, temporal_patch_size=2, merge_size=2,
                           image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5],
                           image_processor_type="Qwen2VLImageProcessor"),
         text=dict(vocab_size=1808, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                   layer_types=["linear_attention", "full_attention"], num_attention_heads=4, num_key_value_heads=2,
                   head_dim=64, linear_num_key_heads=2, linear_num_value_heads=4, linear_key_head_dim=64,
                   linear_value_head_dim=64, linear_conv_kernel_dim=4,
                   rope_parameters=dict(rope_type="default", rope_theta=10000.0, partial_rotary_factor=0.25,
                                        mrope_section=[3, 3, 2], mrope_interleaved=True)),
         expert=dict(action_dim=32, hidden_size=256, num_layers=2, num_heads=4, head_dim=64, intermediate_size=512,
                     context_dim=256, rope_theta=10000.0, num_inference_steps=5),
         cases=[("aloha", "Hand over the cube.", None), ("aloha", "Fold the towel.", None),
                ("aloha", "Pick up the red block.", 8), ("aloha", "Put the spoon in the pot.", None)]),
]

VISION = dict(depth=2, hidden_size=16, intermediate_size=32, num_heads=2, in_channels=3, patch_size=4,
              spatial_merge_size=2, temporal_patch_size=2, num_position_embeddings=16)
PREPROCESSOR = dict(min_pixels=64, max_pixels=1024, patch_size=4, temporal_patch_size=2, merge_size=2,
                    image_mean=[0.48145466, 0.4578275, 0.40821073], image_std=[0.26862954, 0.26130258, 0.27577711],
                    image_processor_type="Qwen2VLImageProcessor")


def randomize(module, scale=1.0):
    """Non-default values everywhere (norm weights, biases), so a wrong formula shows."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("A_log"):
                p.copy_(torch.empty_like(p).uniform_(0.02, 0.6).log())
            elif name.endswith("dt_bias"):
                p.copy_(torch.randn_like(p) * 0.5 - 1.0)
            elif name.endswith("linear_attn.norm.weight") or name.endswith("_norm.weight") and "action_expert" in name:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif p.ndim == 1:
                p.copy_(0.2 * torch.randn_like(p))
            elif "embed_tokens" in name:
                p.copy_(torch.randn_like(p))
            elif "conv1d" in name:
                p.copy_(torch.randn_like(p) * 0.5)
            else:
                p.copy_(torch.randn_like(p) * scale / math.sqrt(p.shape[-1]))


def quantiles(emb, gen):
    c = len(emb["action_names"])
    q01 = torch.randn(c, generator=gen) * 0.5 - 1.0
    q99 = q01 + 0.5 + torch.rand(c, generator=gen) * 2
    return [round(float(x), 4) for x in q01], [round(float(x), 4) for x in q99]


def build_folder(spec, out, seed):
    from transformers import Qwen3_5Config, Qwen3_5ForCausalLM, Qwen3_5ForConditionalGeneration, Qwen3_5TextConfig
    torch.manual_seed(seed)
    if spec.get("layout") == "conditional":
        text = dict(spec["text"], tie_word_embeddings=spec["tied"])
        vision = spec.get("vision", VISION)
        config = Qwen3_5Config(text_config=text, vision_config=dict(vision, out_hidden_size=text["hidden_size"]),
                               tie_word_embeddings=spec["tied"], image_token_id=1798, video_token_id=1799,
                               vision_start_token_id=1795, vision_end_token_id=1796)
        backbone = Qwen3_5ForConditionalGeneration(config).eval()
    else:
        config = Qwen3_5TextConfig(**dict(spec["text"], tie_word_embeddings=spec["tied"]))
        backbone = Qwen3_5ForCausalLM(config).eval()
    randomize(backbone)
    expert = ActionExpert(spec["expert"]).eval()
    randomize(expert)
    if spec.get("bf16"):
        # Stored as BF16, as Hugging Face checkpoints are; the reference computes in f32 on exactly those values.
        with torch.no_grad():
            for p in list(backbone.parameters()) + list(expert.parameters()):
                p.copy_(p.bfloat16().float())
    shutil.rmtree(out, ignore_errors=True)
    backbone.save_pretrained(out, safe_serialization=True)
    for extra in ("generation_config.json",):
        if os.path.exists(os.path.join(out, extra)):
            os.remove(os.path.join(out, extra))
    state = load_file(os.path.join(out, "model.safetensors"))
    state.update({"action_expert." + k: v.contiguous() for k, v in expert.state_dict().items()})
    if spec.get("bf16"):
        state = {k: v.bfloat16() if v.is_floating_point() else v for k, v in state.items()}
    save_file(state, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(out, "config.json")) as f:
        cfg = json.load(f)
    gen = torch.Generator().manual_seed(seed + 5)
    embodiments = []
    for e in spec["embodiments"]:
        q01, q99 = quantiles(e, gen)
        embodiments.append(dict(e, q01=q01, q99=q99))
    cfg["action_expert"] = spec["expert"]
    cfg["embodiments"] = embodiments
    if spec["prefix_template"]:
        cfg["prefix_template"] = spec["prefix_template"]
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, ensure_ascii=False)
    shutil.copy(TOKENIZER, os.path.join(out, "tokenizer.json"))
    if spec.get("layout") == "conditional":
        with open(os.path.join(out, "preprocessor_config.json"), "w") as f:
            json.dump(spec.get("preprocessor", PREPROCESSOR), f, indent=2)
    return backbone, expert


def make_images(spec, out, gen):
    """Smooth random RGB images (PNG) so resampling differences would show."""
    from PIL import Image
    import numpy as np
    images = {}
    for name, (w, h) in spec.get("images", {}).items():
        base = torch.rand(3, 4, 4, generator=gen)
        up = F.interpolate(base[None], size=(h, w), mode="bilinear", align_corners=False)[0]
        noise = torch.rand(3, h, w, generator=gen) * 0.2
        a = ((up * 0.8 + noise).clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
        Image.fromarray(np.ascontiguousarray(a), "RGB").save(os.path.join(out, name + ".png"))
        images[name] = Image.open(os.path.join(out, name + ".png")).convert("RGB")
    return images


def make_fixture(spec, root, seed):
    out = os.path.join(root, spec["name"])
    backbone, expert = build_folder(spec, out, seed)
    vla = QwenVLA(out, backbone=backbone, expert=expert)
    K = spec["expert"]["action_dim"]
    tensors, cases = {}, []
    gen = torch.Generator().manual_seed(seed + 9)
    images = make_images(spec, out, gen)
    for i, (tag, instruction, steps) in enumerate(spec["cases"]):
        key = f"case{i}"
        emb = vla.embodiment(tag)
        noise = torch.randn(emb["chunk_size"], K, generator=gen)
        r = vla.act(tag, instruction, noise, steps, images)
        tensors.update({f"{key}.noise": noise, f"{key}.context": r["context"], f"{key}.velocity0": r["velocity0"],
                        f"{key}.actions_normalized": r["actions_normalized"], f"{key}.actions": r["actions"]})
        cases.append(dict(key=key, tag=tag, instruction=instruction, steps=steps, prompt=r["prompt"],
                          prefix=r["prefix"], input_ids=r["input_ids"].tolist()))
        # Normalization as the reference computes it, on values around [q01, q99] (some clip).
        q01, q99 = torch.tensor(emb["q01"]), torch.tensor(emb["q99"])
        a = unnormalize(torch.rand(3, len(q01), generator=gen) * 2.4 - 1.2, q01, q99)
        tensors[f"{key}.raw"] = a
        tensors[f"{key}.raw_normalized"] = normalize(a, q01, q99)
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(out, "reference.safetensors"))
    with open(os.path.join(out, "cases.json"), "w") as f:
        json.dump(cases, f, indent=1, ensure_ascii=False)
    size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    peak = max(tensors[c["key"] + ".actions_normalized"].abs().max().item() for c in cases)
    print(f"{spec['name']}: {len(cases)} cases, {size // 1024} KB, max|a'|={peak:.3f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(REPO, "Tests/Fixtures/qwen_vla"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    for i, spec in enumerate(CONFIGS):
        make_fixture(spec, args.out, seed=4000 + 31 * i)


if __name__ == "__main__":
    main()
