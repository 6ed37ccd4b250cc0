#!/usr/bin/env python3
"""Fixtures for Tendon's image path, made by the reference implementations themselves (Pillow 13.0.0,
transformers 5.23.0): image decoding, Qwen2-VL preprocessing and the Qwen3.5 vision tower + backbone.

Writes Tests/Fixtures/vision/:
  images/<name>.png|jpg         small test images written by Pillow (RGB, RGBA, L, LA, P+tRNS, 16-bit gray,
                                baseline JPEG colour and gray), sizes chosen so smart_resize upscales,
                                downscales, keeps, rounds a half to even and needs min_pixels / max_pixels
  preprocessor_config.json      the processor settings used throughout (patch 16, merge 2, temporal 2)
  preprocess.safetensors        <name>.decoded [H, W, 3] u8 (transformers' convert_to_rgb of Image.open),
                                <name>.resized [h, w, 3] u8 (Pillow BICUBIC to the smart_resize size),
                                <name>.grid [3] i32, and for a few images <name>.pixel_values [N, 1536] f32
                                (Qwen2VLImageProcessorPil)
  model/                        a tiny random Qwen3_5ForConditionalGeneration (save_pretrained, f32) with
                                preprocessor_config.json and the word-level tokenizer.json the processor used
  model/reference.safetensors   per case (`one`: one image, `two`: two images of different grids):
                                <case>.input_ids [T] i32 (Qwen3VLProcessor, pads expanded), <case>.grid [n, 3],
                                <case>.vision_blocks [N, d] (last block output),
                                <case>.vision_tokens [N/4, D] (merger output), <case>.position_ids [3, T] i32
                                (get_rope_index), <case>.last_hidden_state [T, D], <case>.logits [T, V]

Usage: /opt/tendon-ref/bin/python Tools/reference/qwen35_vision_reference.py [--out Tests/Fixtures/vision]
"""
import argparse
import json
import math
import os
import shutil

import numpy as np
import torch
from PIL import Image
from safetensors.numpy import save_file
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (PreTrainedTokenizerFast, Qwen2VLImageProcessorPil, Qwen3_5Config,
                          Qwen3_5ForConditionalGeneration, Qwen3VLProcessor)
from transformers.image_transforms import convert_to_rgb

PREPROCESSOR = dict(size=dict(shortest_edge=1024, longest_edge=4096), patch_size=16, temporal_patch_size=2,
                    merge_size=2, image_mean=[0.5, 0.42, 0.31], image_std=[0.27, 0.3, 0.22],
                    do_resize=True, do_rescale=True, rescale_factor=1 / 255, do_normalize=True,
                    do_convert_rgb=True, image_processor_type="Qwen2VLImageProcessor",
                    processor_class="Qwen3VLProcessor")

# name, (width, height), mode, format, store pixel_values
IMAGES = [
    ("tall_min_pixels", (12, 40), "RGB", "png", True),    # w rounds to 0 → min_pixels path, upscale
    ("wide_max_pixels", (120, 90), "RGB", "jpg", True),   # over max_pixels → both axes shrink
    ("odd_rgba", (101, 37), "RGBA", "png", True),         # alpha composited on white; mild downscale
    ("exact_gray", (64, 32), "L", "png", False),          # already a multiple of 32: no resampling
    ("tie_palette", (80, 48), "P", "png", False),         # 48/32 = 1.5 and 80/32 = 2.5 round to even
    ("gray16", (40, 30), "I;16", "png", False),           # 16-bit gray: Pillow clips to 255
    ("gray_jpeg", (50, 50), "L", "jpg", False),
    ("gray_alpha", (33, 33), "LA", "png", False),
]


def pattern(w, h, seed):
    """Smooth gradients plus edges and noise, so every filter tap matters."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 127 + 120 * np.sin(x / max(w, 1) * 7 + y / max(h, 1) * 3)
    g = 255 * ((x // 5 + y // 3) % 2)
    b = 255 * (x / max(w - 1, 1)) * (y / max(h - 1, 1))
    img = np.stack([r, g, b], -1) + rng.normal(0, 18, (h, w, 3))
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def make_image(name, size, mode, fmt, seed, folder):
    w, h = size
    rgb = pattern(w, h, seed)
    path = os.path.join(folder, f"{name}.{fmt}")
    if mode == "RGB":
        im = Image.fromarray(rgb, "RGB")
    elif mode == "RGBA":
        alpha = ((np.arange(w)[None, :] * 255 // max(w - 1, 1)) ^ (np.arange(h)[:, None] * 37 % 256)).astype(np.uint8)
        alpha[0, :4] = 0
        alpha[1, :4] = 255
        im = Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    elif mode == "L":
        im = Image.fromarray(rgb[..., 0], "L")
    elif mode == "LA":
        alpha = (np.arange(w)[None, :] * 7 + np.arange(h)[:, None] * 11).astype(np.uint8)
        im = Image.fromarray(np.dstack([rgb[..., 1], alpha]), "LA")
    elif mode == "P":
        im = Image.fromarray(rgb, "RGB").quantize(colors=24)
        im.info["transparency"] = 3
    elif mode == "I;16":
        v = (rgb[..., 0].astype(np.uint16) * 2 + rgb[..., 2].astype(np.uint16) // 3)
        im = Image.fromarray(v.astype(np.uint16))
    kwargs = dict(quality=85) if fmt == "jpg" else {}
    if mode == "P":
        kwargs["transparency"] = 3
    im.save(path, **kwargs)
    return path


def preprocess_fixtures(out):
    folder = os.path.join(out, "images")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    processor = Qwen2VLImageProcessorPil(**{k: v for k, v in PREPROCESSOR.items()
                                            if k not in ("image_processor_type", "processor_class")})
    tensors = {}
    for i, (name, size, mode, fmt, store) in enumerate(IMAGES):
        path = make_image(name, size, mode, fmt, 100 + i, folder)
        opened = Image.open(path)
        decoded = convert_to_rgb(opened, return_numpy=True)
        tensors[f"{name}.decoded"] = np.ascontiguousarray(decoded)
        feats = processor(images=Image.open(path), return_tensors="np")
        grid = feats["image_grid_thw"][0]
        h, w = int(grid[1]) * 16, int(grid[2]) * 16
        resized = np.array(Image.fromarray(decoded, "RGB").resize((w, h), resample=Image.Resampling.BICUBIC))
        tensors[f"{name}.resized"] = np.ascontiguousarray(resized)
        tensors[f"{name}.grid"] = grid.astype(np.int32)
        if store:
            tensors[f"{name}.pixel_values"] = feats["pixel_values"].astype(np.float32)
        print(f"{name}: {mode} {fmt} {size} → {w}x{h}, grid {grid.tolist()}")
    save_file(tensors, os.path.join(out, "preprocess.safetensors"))
    with open(os.path.join(out, "preprocessor_config.json"), "w") as f:
        json.dump(PREPROCESSOR, f, indent=2)


WORDS = ["pick", "the", "red", "block", "and", "place", "it", "in", "bowl", "now", "robot", "left", "right"]
VOCAB = 96
VISION_START, VISION_END, IMAGE_PAD, VIDEO_PAD = VOCAB - 5, VOCAB - 4, VOCAB - 3, VOCAB - 2


def make_processor():
    vocab = {w: i for i, w in enumerate(WORDS)}
    vocab["<unk>"] = len(WORDS)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    specials = {VISION_START: "<|vision_start|>", VISION_END: "<|vision_end|>", IMAGE_PAD: "<|image_pad|>",
                VIDEO_PAD: "<|video_pad|>"}
    # Pad the vocabulary so the special tokens land on the ids the model config names.
    for i in range(len(vocab), VOCAB):
        tok.add_tokens([specials.get(i, f"<filler_{i}>")]) if i not in specials else tok.add_special_tokens([specials[i]])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>")
    for i, s in specials.items():
        assert fast.convert_tokens_to_ids(s) == i, (s, fast.convert_tokens_to_ids(s), i)
    image_processor = Qwen2VLImageProcessorPil(**{k: v for k, v in PREPROCESSOR.items()
                                                  if k not in ("image_processor_type", "processor_class")})
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor
    # The argument class check looks the video base class up in a registry that is incomplete without
    # torchvision; the classes passed here are the real ones, so the check is skipped.
    Qwen3VLProcessor.check_argument_for_proper_class = lambda self, name, arg: type(arg)
    processor = Qwen3VLProcessor(image_processor=image_processor, tokenizer=fast, video_processor=Qwen3VLVideoProcessor())
    return processor, tok


def build_model(seed):
    torch.manual_seed(seed)
    text = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=40, num_hidden_layers=3,
                layer_types=["linear_attention", "full_attention", "linear_attention"],
                num_attention_heads=2, num_key_value_heads=1, head_dim=16,
                linear_num_key_heads=1, linear_num_value_heads=2, linear_key_head_dim=8, linear_value_head_dim=8,
                linear_conv_kernel_dim=4, tie_word_embeddings=False,
                rope_parameters=dict(rope_type="default", rope_theta=10000.0, partial_rotary_factor=1.0,
                                     mrope_section=[2, 3, 3], mrope_interleaved=True))
    vision = dict(depth=2, hidden_size=16, intermediate_size=24, num_heads=2, in_channels=3, patch_size=16,
                  spatial_merge_size=2, temporal_patch_size=2, num_position_embeddings=16, out_hidden_size=32,
                  hidden_act="gelu_pytorch_tanh")
    config = Qwen3_5Config(text_config=text, vision_config=vision, tie_word_embeddings=False,
                           image_token_id=IMAGE_PAD, video_token_id=VIDEO_PAD, vision_start_token_id=VISION_START,
                           vision_end_token_id=VISION_END)
    model = Qwen3_5ForConditionalGeneration(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("A_log"):
                p.copy_(torch.empty_like(p).uniform_(0.02, 0.6).log())
            elif name.endswith("dt_bias"):
                p.copy_(torch.randn_like(p) * 0.5 - 1.0)
            elif "linear_attn.norm" in name:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif "visual" in name and "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.3 * torch.randn_like(p))  # LayerNorm weights used as is
            elif p.ndim == 1:
                p.copy_(0.2 * torch.randn_like(p))
            elif "embed_tokens" in name or "pos_embed" in name:
                p.copy_(torch.randn_like(p))
            elif "conv1d" in name:
                p.copy_(torch.randn_like(p) * 0.5)
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn_like(p) / math.sqrt(fan_in))
    return model


def model_fixtures(out):
    folder = os.path.join(out, "model")
    shutil.rmtree(folder, ignore_errors=True)
    model = build_model(4242)
    model.save_pretrained(folder, safe_serialization=True)
    os.remove(os.path.join(folder, "generation_config.json"))
    with open(os.path.join(folder, "preprocessor_config.json"), "w") as f:
        json.dump(PREPROCESSOR, f, indent=2)
    processor, tok = make_processor()
    tok.save(os.path.join(folder, "tokenizer.json"))  # `tendon-train convert` carries it into the GGUF
    images = os.path.join(out, "images")
    cases = {
        "one": (["wide_max_pixels.jpg"], "pick the <|vision_start|><|image_pad|><|vision_end|> red block now"),
        "two": (["odd_rgba.png", "tall_min_pixels.png"],
                "robot <|vision_start|><|image_pad|><|vision_end|><|vision_start|><|image_pad|><|vision_end|> "
                "place it in the left bowl"),
    }
    tensors = {}
    for case, (files, text) in cases.items():
        pil = [Image.open(os.path.join(images, f)) for f in files]
        batch = processor(text=[text], images=pil, return_tensors="pt")
        ids = batch["input_ids"]
        captured = {}
        visual = model.model.visual
        hook_blocks = visual.blocks[-1].register_forward_hook(lambda m, i, o: captured.__setitem__("blocks", o))
        hook_merger = visual.merger.register_forward_hook(lambda m, i, o: captured.__setitem__("tokens", o))
        with torch.no_grad():
            out_ = model(input_ids=ids, pixel_values=batch["pixel_values"], image_grid_thw=batch["image_grid_thw"],
                         mm_token_type_ids=batch["mm_token_type_ids"], use_cache=False, output_hidden_states=True)
            pos, _ = model.model.get_rope_index(ids, mm_token_type_ids=batch["mm_token_type_ids"],
                                                image_grid_thw=batch["image_grid_thw"])
        hook_blocks.remove()
        hook_merger.remove()
        blocks = captured["blocks"][0] if isinstance(captured["blocks"], tuple) else captured["blocks"]
        tensors[f"{case}.input_ids"] = ids[0].numpy().astype(np.int32)
        tensors[f"{case}.grid"] = batch["image_grid_thw"].numpy().astype(np.int32)
        tensors[f"{case}.vision_blocks"] = blocks.detach().numpy().astype(np.float32)
        tensors[f"{case}.vision_tokens"] = captured["tokens"].detach().numpy().astype(np.float32)
        tensors[f"{case}.position_ids"] = pos[:, 0].numpy().astype(np.int32)
        tensors[f"{case}.last_hidden_state"] = out_.hidden_states[-1][0].numpy().astype(np.float32)
        tensors[f"{case}.logits"] = out_.logits[0].numpy().astype(np.float32)
        print(f"model {case}: T={ids.shape[1]} grids={batch['image_grid_thw'].tolist()} "
              f"max|logit|={out_.logits.abs().max().item():.3f}")
    save_file(tensors, os.path.join(folder, "reference.safetensors"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="Tests/Fixtures/vision")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    preprocess_fixtures(args.out)
    model_fixtures(args.out)
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(args.out) for f in fs)
    print(f"total {total // 1024} KB")


if __name__ == "__main__":
    main()
