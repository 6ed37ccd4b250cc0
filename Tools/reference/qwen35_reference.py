#!/usr/bin/env python3
"""Builds tiny random Qwen3.5 checkpoints with transformers (5.23.0) and records what its own modules
compute for them, so Tendon's Swift backbone is checked against the reference without Python at test time
(the llm.c test_gpt2 pattern: the reference writes its activations, the fast code is compared to them).

For every config in CONFIGS this writes Tests/Fixtures/qwen35/<name>/:
  config.json, model.safetensors (or sharded + model.safetensors.index.json)   -- save_pretrained, f32
  reference.safetensors: input_ids [T] (i32), logits [T, V] (f32), embeddings [T, D],
                         hidden.<i> [T, D] (output of decoder layer i), final_norm [T, D];
                         conditional layout also: mrope_position_ids [3, T] (i32), logits_mrope [T, V]

The configs cover odd sizes (hidden 48/64/96), head_dim != hidden/heads, grouped kv heads, grouped value
heads in the DeltaNet, partial rotary factors, tied and untied embeddings, the text-only layout
(Qwen3_5ForCausalLM: model.layers.*) and the conditional-generation layout (model.language_model.*,
with a tiny vision tower), a sharded checkpoint, and one sequence longer than the DeltaNet chunk (64).

Parameters are re-drawn with larger, non-default values (norm weights, dt_bias, A_log, conv weights) so
that a wrong formula moves the logits well beyond the tolerance.

Usage: /opt/tendon-ref/bin/python Tools/reference/qwen35_reference.py [--out Tests/Fixtures/qwen35]
"""
import argparse
import json
import math
import os
import shutil

import torch
from safetensors.torch import save_file
from transformers import (Qwen3_5Config, Qwen3_5ForCausalLM, Qwen3_5ForConditionalGeneration,
                          Qwen3_5TextConfig)

CONFIGS = [
    # name, layout, text config overrides, tied, T, shard size (None = single file)
    dict(name="text_tied", layout="causal", tied=True, T=9, shard=None, text=dict(
        vocab_size=256, hidden_size=64, intermediate_size=32, num_hidden_layers=3,
        layer_types=["linear_attention", "full_attention", "linear_attention"],
        num_attention_heads=3, num_key_value_heads=1, head_dim=24,
        linear_num_key_heads=1, linear_num_value_heads=2, linear_key_head_dim=16, linear_value_head_dim=12,
        linear_conv_kernel_dim=4,
        rope_parameters=dict(rope_type="default", rope_theta=10000.0, partial_rotary_factor=0.25,
                             mrope_section=[1, 1, 1], mrope_interleaved=True))),
    dict(name="text_untied_long", layout="causal", tied=False, T=70, shard=None, text=dict(
        vocab_size=160, hidden_size=48, intermediate_size=40, num_hidden_layers=2,
        layer_types=["full_attention", "linear_attention"],
        num_attention_heads=3, num_key_value_heads=1, head_dim=20,
        linear_num_key_heads=2, linear_num_value_heads=2, linear_key_head_dim=12, linear_value_head_dim=16,
        linear_conv_kernel_dim=3,
        rope_parameters=dict(rope_type="default", rope_theta=1000.0, partial_rotary_factor=0.5,
                             mrope_section=[2, 2, 1], mrope_interleaved=True))),
    dict(name="text_sharded", layout="causal", tied=False, T=13, shard="60KB", text=dict(
        vocab_size=300, hidden_size=32, intermediate_size=56, num_hidden_layers=5,
        layer_types=["linear_attention", "linear_attention", "full_attention", "linear_attention",
                     "full_attention"],
        num_attention_heads=2, num_key_value_heads=2, head_dim=16,
        linear_num_key_heads=1, linear_num_value_heads=3, linear_key_head_dim=8, linear_value_head_dim=8,
        linear_conv_kernel_dim=4,
        rope_parameters=dict(rope_type="default", rope_theta=10000000.0, partial_rotary_factor=0.25,
                             mrope_section=[1, 1, 0], mrope_interleaved=True))),
    dict(name="vlm_untied", layout="conditional", tied=False, T=12, shard=None, text=dict(
        vocab_size=256, hidden_size=48, intermediate_size=32, num_hidden_layers=2,
        layer_types=["linear_attention", "full_attention"],
        num_attention_heads=2, num_key_value_heads=1, head_dim=32,
        linear_num_key_heads=2, linear_num_value_heads=2, linear_key_head_dim=16, linear_value_head_dim=16,
        linear_conv_kernel_dim=4,
        rope_parameters=dict(rope_type="default", rope_theta=10000000.0, partial_rotary_factor=0.25,
                             mrope_section=[2, 1, 1], mrope_interleaved=True))),
    dict(name="vlm_tied", layout="conditional", tied=True, T=24, shard=None, text=dict(
        vocab_size=224, hidden_size=64, intermediate_size=24, num_hidden_layers=2,
        layer_types=["full_attention", "linear_attention"],
        num_attention_heads=4, num_key_value_heads=2, head_dim=16,
        linear_num_key_heads=1, linear_num_value_heads=2, linear_key_head_dim=16, linear_value_head_dim=8,
        linear_conv_kernel_dim=2,
        rope_parameters=dict(rope_type="default", rope_theta=10000.0, partial_rotary_factor=1.0,
                             mrope_section=[3, 3, 2], mrope_interleaved=True))),
]

VISION = dict(depth=1, hidden_size=16, intermediate_size=32, num_heads=2, in_channels=3, patch_size=4,
              spatial_merge_size=2, temporal_patch_size=2, num_position_embeddings=16)


def build(spec):
    text = dict(spec["text"], tie_word_embeddings=spec["tied"])
    if spec["layout"] == "causal":
        config = Qwen3_5TextConfig(**text)
        model = Qwen3_5ForCausalLM(config)
    else:
        config = Qwen3_5Config(text_config=text, vision_config=dict(VISION, out_hidden_size=text["hidden_size"]),
                               tie_word_embeddings=spec["tied"], image_token_id=text["vocab_size"] - 3,
                               video_token_id=text["vocab_size"] - 2, vision_start_token_id=text["vocab_size"] - 5,
                               vision_end_token_id=text["vocab_size"] - 4)
        model = Qwen3_5ForConditionalGeneration(config)
    model.eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("A_log"):
                p.copy_(torch.empty_like(p).uniform_(0.02, 0.6).log())
            elif name.endswith("dt_bias"):
                p.copy_(torch.randn_like(p) * 0.5 - 1.0)
            elif name.endswith("norm.weight") and "linear_attn.norm" in name:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))  # gated norm: weight used as is
            elif p.ndim == 1:
                p.copy_(0.2 * torch.randn_like(p))  # (1+w) norms and biases
            elif "embed_tokens" in name:
                p.copy_(torch.randn_like(p))
            elif "conv1d" in name:
                p.copy_(torch.randn_like(p) * 0.5)
            else:
                fan_in = p.shape[-1] if p.ndim == 2 else p[0].numel()
                p.copy_(torch.randn_like(p) / math.sqrt(fan_in))
    return model


def text_model(model):
    return model.model if isinstance(model, Qwen3_5ForCausalLM) else model.model.language_model


def run(spec, out_root, seed):
    torch.manual_seed(seed)
    model = build(spec)
    out = os.path.join(out_root, spec["name"])
    shutil.rmtree(out, ignore_errors=True)
    kwargs = {} if spec["shard"] is None else dict(max_shard_size=spec["shard"])
    model.save_pretrained(out, safe_serialization=True, **kwargs)
    os.remove(os.path.join(out, "generation_config.json"))  # not part of what Tendon reads

    vocab = spec["text"]["vocab_size"]
    # Ids stay clear of the top few, where the conditional-generation configs put their vision tokens.
    ids = torch.randint(0, vocab - 8, (1, spec["T"]), generator=torch.Generator().manual_seed(seed + 1))
    captured = {}
    tm = text_model(model)
    hooks = [layer.register_forward_hook(lambda m, i, o, k=k: captured.__setitem__(f"hidden.{k}", o))
             for k, layer in enumerate(tm.layers)]
    hooks.append(tm.embed_tokens.register_forward_hook(lambda m, i, o: captured.__setitem__("embeddings", o)))
    hooks.append(tm.norm.register_forward_hook(lambda m, i, o: captured.__setitem__("final_norm", o)))
    with torch.no_grad():
        logits = model(input_ids=ids, use_cache=False).logits
    for h in hooks:
        h.remove()
    tensors = {"input_ids": ids[0].to(torch.int32), "logits": logits[0].float().contiguous()}
    for k, v in captured.items():
        v = v[0] if isinstance(v, tuple) else v
        tensors[k] = v[0].float().contiguous()
    if spec["layout"] == "conditional":
        # Three distinct position rows (temporal, height, width) check the interleaved mrope sections.
        T = spec["T"]
        t = torch.arange(T)
        pos = torch.stack([t, t // 3 + 1, (t * 7) % 5 + 2]).view(3, 1, T)
        with torch.no_grad():
            tensors["logits_mrope"] = model(input_ids=ids, position_ids=pos, use_cache=False).logits[0].contiguous()
        tensors["mrope_position_ids"] = pos[:, 0].to(torch.int32).contiguous()
    save_file(tensors, os.path.join(out, "reference.safetensors"))
    size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    print(f"{spec['name']}: T={spec['T']} vocab={vocab} files={sorted(os.listdir(out))} {size // 1024} KB "
          f"max|logit|={logits.abs().max().item():.3f}")


def write_gguf(spec, out_root, seed):
    """The same tiny model as a Tendon GGUF (config.json text under `tendon.config_json`, Hugging Face tensor
    names, 2-D weights Q8_0/Q4_0/F16 where rows are whole blocks, the rest F32). The reference logits come from
    transformers running the *dequantized* weights (gguf.quants.dequantize), so quantized matmuls are checked
    exactly, not against the f32 model."""
    import gguf
    import numpy as np
    from gguf import GGMLQuantizationType as Q
    torch.manual_seed(seed)
    model = build(spec)
    out = os.path.join(out_root, spec["name"] + "_gguf")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    config_text = model.config.to_json_string()
    writer = gguf.GGUFWriter(os.path.join(out, "model.gguf"), "qwen35")
    writer.add_string("tendon.config_json", config_text)
    kinds = [Q.Q8_0, Q.Q4_0, Q.F16]
    state = {k: v for k, v in model.state_dict().items() if k != "lm_head.weight" or not spec["tied"]}
    with torch.no_grad():
        for i, (name, t) in enumerate(sorted(state.items())):
            a = t.float().numpy()
            kind = kinds[i % 3] if a.ndim == 2 and a.shape[1] % 32 == 0 else Q.F32
            if kind == Q.F32:
                writer.add_tensor(name, a)
                restored = a
            elif kind == Q.F16:
                writer.add_tensor(name, a.astype(np.float16))
                restored = a.astype(np.float16).astype(np.float32)
            else:
                q = gguf.quants.quantize(a, kind)
                writer.add_tensor(name, q, raw_dtype=kind)
                restored = gguf.quants.dequantize(q, kind).reshape(a.shape)
            dict(model.named_parameters())[name].copy_(torch.from_numpy(np.ascontiguousarray(restored)))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    vocab = spec["text"]["vocab_size"]
    ids = torch.randint(0, vocab - 8, (1, spec["T"]), generator=torch.Generator().manual_seed(seed + 1))
    with torch.no_grad():
        logits = model(input_ids=ids, use_cache=False).logits
    save_file({"input_ids": ids[0].to(torch.int32), "logits": logits[0].contiguous()},
              os.path.join(out, "reference.safetensors"))
    size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    print(f"{spec['name']}_gguf: {size // 1024} KB")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="Tests/Fixtures/qwen35")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for i, spec in enumerate(CONFIGS):
        run(spec, args.out, seed=1000 + 17 * i)
    write_gguf(CONFIGS[0], args.out, seed=99)


if __name__ == "__main__":
    main()
