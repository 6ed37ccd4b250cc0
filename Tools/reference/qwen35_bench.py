#!/usr/bin/env python3
"""Prefill speed of transformers' Qwen3_5ForCausalLM (the PyTorch reference implementation, CPU, f32) on a
random ~50M-parameter Qwen3.5 text config, for `tendon bench forward` to print next to its own number.

Writes the checkpoint (save_pretrained, f32) to --out so the Swift side times the very same weights, then
prints one JSON line: {"params", "tokens", "threads", "torch_seconds", "torch_tokens_per_s", "config"}.

Usage: /opt/tendon-ref/bin/python Tools/reference/qwen35_bench.py --out DIR [--tokens 256] [--repeat 3]
"""
import argparse
import json
import time

import torch
from transformers import Qwen3_5ForCausalLM, Qwen3_5TextConfig

BENCH_CONFIG = dict(
    vocab_size=32000, hidden_size=512, intermediate_size=2048, num_hidden_layers=8,
    layer_types=["linear_attention", "linear_attention", "linear_attention", "full_attention"] * 2,
    num_attention_heads=8, num_key_value_heads=2, head_dim=64,
    linear_num_key_heads=4, linear_num_value_heads=8, linear_key_head_dim=64, linear_value_head_dim=64,
    linear_conv_kernel_dim=4, tie_word_embeddings=True,
    rope_parameters=dict(rope_type="default", rope_theta=10000000.0, partial_rotary_factor=0.25,
                         mrope_section=[3, 3, 2], mrope_interleaved=True))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = Qwen3_5ForCausalLM(Qwen3_5TextConfig(**BENCH_CONFIG)).eval()
    model.save_pretrained(args.out, safe_serialization=True)
    ids = torch.randint(0, BENCH_CONFIG["vocab_size"], (1, args.tokens), generator=torch.Generator().manual_seed(1))
    best = float("inf")
    with torch.no_grad():
        model(input_ids=ids[:, :8], use_cache=False)  # warm-up
        for _ in range(args.repeat):
            start = time.perf_counter()
            model(input_ids=ids, use_cache=False)
            best = min(best, time.perf_counter() - start)
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps(dict(params=params, tokens=args.tokens, threads=args.threads, torch_seconds=best,
                          torch_tokens_per_s=args.tokens / best, ids=ids[0].tolist())))


if __name__ == "__main__":
    main()
