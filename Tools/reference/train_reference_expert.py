"""Trains the reference config's action expert with the paper's flow-matching loss on a synthetic task, so that
quantization error can also be measured on a policy whose velocity field was learned rather than drawn at
random (issue #4: the reference config itself stays the random model `qwen_vla_bench.py build` writes).

Task: for each observation (a random 224×224 image and an instruction), the target chunk is a smooth
trajectory per active channel whose offset, amplitude, frequency and phase are a fixed random function of
the backbone's mean hidden state, squashed into [−0.9, 0.9] — so the expert must read the context. The
backbone and vision tower stay frozen (random); the whole expert trains (AdamW, π0-style Beta τ sampling,
the masked per-channel loss of `qwen_vla.flow_loss`).

Run: /opt/tendon-ref/bin/python Tools/reference/train_reference_expert.py --model /tmp/tendon-bench-act/hf \
         --out /tmp/tendon-trained/hf [--minutes 12]
Writes a copy of the model folder with the trained `action_expert.*` tensors, plus `eval.jsonl` (held-out
observations with their images) and the bench folder's calibration set.
"""
import argparse
import json
import math
import os
import shutil
import time

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

import qwen_vla

TRAIN_INSTRUCTIONS = [
    "Pick up the red cube and place it in the bowl.", "Open the drawer.", "Fold the towel in half.",
    "Stack the green block on the blue one.", "Wipe the table with the sponge.", "Put the marker in the cup.",
    "Hand the screwdriver to the left arm.", "Close the laptop lid.", "Pour the beans into the bowl.",
    "Push the button.", "Lift the box.", "Insert the peg into the hole."]
EVAL_INSTRUCTIONS = ["Pick up the cup and put it on the plate.", "Push the red button.", "Lift the lid of the box.",
                     "Move the spoon to the left."]


def observation_hidden(vla, tag, instruction, image):
    """The backbone's hidden states for one observation, as `QwenVLA.act` computes them."""
    emb = vla.embodiment(tag)
    out = vla.processor()([image], return_tensors="pt")
    merge = vla.config["vision_config"]["spatial_merge_size"]
    tokens = [int(t * h * w) // merge ** 2 for t, h, w in out["image_grid_thw"].tolist()]
    ids = torch.tensor(vla.tokenizer.encode(vla.prefix(emb, instruction, tokens), add_special_tokens=False).ids)
    with torch.no_grad():
        return vla.hidden(ids, out["pixel_values"], out["image_grid_thw"])


def target_chunk(V, projection, H, K, active):
    """Smooth trajectories in [−0.9, 0.9] whose parameters are a fixed random function of mean(V)."""
    p = torch.tanh(projection @ V.mean(0))                    # [4·active]
    offset, amplitude, frequency, phase = p.view(4, active)
    t = torch.arange(H, dtype=torch.float32)[:, None] / H
    y = 0.5 * offset + 0.4 * amplitude * torch.sin(2 * math.pi * (0.5 + 0.75 * (frequency + 1)) * t + math.pi * phase)
    out = torch.zeros(H, K)
    out[:, :active] = y.clamp(-0.9, 0.9)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="/tmp/tendon-bench-act/hf")
    ap.add_argument("--out", default="/tmp/tendon-trained/hf")
    ap.add_argument("--minutes", type=float, default=12)
    ap.add_argument("--observations", type=int, default=48)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    vla = qwen_vla.QwenVLA(args.model)
    emb = vla.embodiment("aloha")
    H, K = emb["chunk_size"], vla.config["action_expert"]["action_dim"]
    active = len(emb["action_names"])
    gen = torch.Generator().manual_seed(77)
    projection = torch.randn(4 * active, vla.config["action_expert"]["context_dim"], generator=gen) * 3.0
    projection /= math.sqrt(vla.config["action_expert"]["context_dim"])

    def random_image():
        return Image.fromarray((torch.rand(224, 224, 3, generator=gen) * 255).to(torch.uint8).numpy())

    started = time.time()
    data = []
    for i in range(args.observations):
        V = observation_hidden(vla, "aloha", TRAIN_INSTRUCTIONS[i % len(TRAIN_INSTRUCTIONS)], random_image())
        data.append((V, target_chunk(V, projection, H, K, active)))
    print(f"{len(data)} training observations in {time.time() - started:.0f} s", flush=True)

    expert = vla.expert.train()
    optimizer = torch.optim.AdamW(expert.parameters(), lr=3e-4, weight_decay=0.0)
    step, batch, losses = 0, 8, []
    deadline = time.time() + 60 * args.minutes
    while time.time() < deadline:
        optimizer.zero_grad()
        total = 0.0
        for _ in range(batch):
            V, Y0 = data[int(torch.randint(len(data), (1,), generator=gen))]
            _, kv = expert.context(V)
            tau = float(qwen_vla.sample_training_time(1)[0])
            loss = qwen_vla.flow_training_step(expert, kv, Y0, torch.randn(H, K, generator=gen), tau, active) / batch
            loss.backward()
            total += loss.item()
        torch.nn.utils.clip_grad_norm_(expert.parameters(), 1.0)
        optimizer.step()
        losses.append(total)
        step += 1
        if step % 25 == 0:
            print(f"step {step}: loss {np.mean(losses[-25:]):.4f}", flush=True)
    expert.eval()

    os.makedirs(args.out, exist_ok=True)
    for name in os.listdir(args.model):
        src = os.path.join(args.model, name)
        if name != "model.safetensors":
            (shutil.copytree if os.path.isdir(src) else shutil.copy)(src, os.path.join(args.out, name))
    state = load_file(os.path.join(args.model, "model.safetensors"))
    for k, v in expert.state_dict().items():
        state["action_expert." + k] = v.detach().contiguous()
    save_file(state, os.path.join(args.out, "model.safetensors"))

    # Held-out observations: other images and instructions; sampled chunk vs target says how well it learned.
    lines, errors, peaks = [], [], []
    for i, text in enumerate(EVAL_INSTRUCTIONS):
        image = random_image()
        image.save(os.path.join(args.out, f"eval_{i}.png"))
        lines.append(json.dumps({"embodiment": "aloha", "instruction": text, "images": {"cam_high": f"eval_{i}.png"},
                                 "seed": 500 + i}))
        V = observation_hidden(vla, "aloha", text, image)
        with torch.no_grad():
            _, kv = expert.context(V)
            Y, _ = expert.sample(torch.randn(H, K, generator=gen), kv, active, 10)
        errors.append((Y - target_chunk(V, projection, H, K, active))[:, :active].abs().mean().item())
        peaks.append(Y[:, :active].abs().max().item())
    with open(os.path.join(args.out, "eval.jsonl"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{step} steps; last loss {np.mean(losses[-25:]):.4f}; held-out mean |a' − target| "
          + " ".join(f"{e:.3f}" for e in errors) + "; max |a'| " + " ".join(f"{p:.2f}" for p in peaks))


if __name__ == "__main__":
    main()
