#!/usr/bin/env python3
"""Checkpoint-format fixtures and cross-checks for TendonModel/Checkpoint (run with /opt/tendon-ref/bin/python).

Write the fixtures (python safetensors + gguf.GGUFWriter are the references, pinned in requirements.txt):
    python Tools/reference/checkpoint_fixtures.py write --out Tests/Fixtures/checkpoint
Check a GGUF that *Tendon* wrote (the committed swift_written.gguf is produced by the Swift test
`GGUFInteropTests.swiftWrittenFixtureIsCurrent`: python_written.gguf's content re-written at alignment 64), with
python's GGUFReader, against the file gguf.GGUFWriter wrote with the same content and alignment:
    python Tools/reference/checkpoint_fixtures.py check-gguf Tests/Fixtures/checkpoint/swift_written.gguf \
        --reference Tests/Fixtures/checkpoint/python_aligned64.gguf
Check a safetensors file Tendon wrote (swift_written.safetensors, from `swiftWrittenSafetensorsIsCurrent`) with
python safetensors, against single.safetensors:
    python Tools/reference/checkpoint_fixtures.py check-safetensors Tests/Fixtures/checkpoint/swift_written.safetensors
Check a `tendon-train convert` output against the HF folder it came from (types, shapes, bytes, metadata):
    python Tools/reference/checkpoint_fixtures.py check-convert FILE.gguf --hf Tests/Fixtures/checkpoint/hf_tiny --quant q8_0
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
import gguf
from gguf import GGUFReader, GGUFWriter, GGUFValueType, GGMLQuantizationType as Q
from safetensors.torch import save_file

# Every metadata value type, arrays of several element types and a nested array; (key, type, value, sub_type).
METADATA = [
    ("test.uint8", GGUFValueType.UINT8, 200, None),
    ("test.int8", GGUFValueType.INT8, -100, None),
    ("test.uint16", GGUFValueType.UINT16, 60000, None),
    ("test.int16", GGUFValueType.INT16, -30000, None),
    ("test.uint32", GGUFValueType.UINT32, 4_000_000_000, None),
    ("test.int32", GGUFValueType.INT32, -2_000_000_000, None),
    ("test.float32", GGUFValueType.FLOAT32, 0.1, None),
    ("test.bool_true", GGUFValueType.BOOL, True, None),
    ("test.bool_false", GGUFValueType.BOOL, False, None),
    ("test.string", GGUFValueType.STRING, "héllo, wörld ✓ \"quoted\"\n", None),
    ("test.uint64", GGUFValueType.UINT64, 18_000_000_000_000_000_000, None),
    ("test.int64", GGUFValueType.INT64, -9_000_000_000_000_000_000, None),
    ("test.float64", GGUFValueType.FLOAT64, 3.141592653589793, None),
    ("test.array_int32", GGUFValueType.ARRAY, [1, -2, 3], GGUFValueType.INT32),
    ("test.array_uint8", GGUFValueType.ARRAY, [0, 255, 7], GGUFValueType.UINT8),
    ("test.array_float32", GGUFValueType.ARRAY, [0.5, -1.25], GGUFValueType.FLOAT32),
    ("test.array_string", GGUFValueType.ARRAY, ["a", "", "ünï"], GGUFValueType.STRING),
    ("test.array_bool", GGUFValueType.ARRAY, [True, False], GGUFValueType.BOOL),
    ("test.array_nested", GGUFValueType.ARRAY, [[1, 2], [3]], GGUFValueType.ARRAY),
]


def gguf_tensors(rng):
    """name → (array to store, raw ggml type or None); shapes are PyTorch order."""
    w8 = rng.standard_normal((2, 64)).astype(np.float32)
    w4 = rng.standard_normal((3, 32)).astype(np.float32)
    return {
        "f32.weight": (rng.standard_normal((2, 3)).astype(np.float32), None),
        "f16.bias": (rng.standard_normal(5).astype(np.float16), None),
        "q8_0.weight": (gguf.quants.quantize(w8, Q.Q8_0), Q.Q8_0),
        "q4_0.weight": (gguf.quants.quantize(w4, Q.Q4_0), Q.Q4_0),
        "f32.cube": (rng.standard_normal((2, 2, 3)).astype(np.float32), None),
    }


def write_python_gguf(path, alignment=None):
    rng = np.random.default_rng(7)
    writer = GGUFWriter(path, "tendon-test")
    if alignment is not None:
        writer.add_custom_alignment(alignment)
    for key, vtype, value, sub in METADATA:
        writer.add_key_value(key, value, vtype, sub_type=sub)
    expected_tensors = []
    for name, (array, raw) in gguf_tensors(rng).items():
        if raw is None:
            writer.add_tensor(name, array)
            shape, ggml = list(array.shape), (Q.F32 if array.dtype == np.float32 else Q.F16)
        else:
            writer.add_tensor(name, array, raw_dtype=raw)
            shape = list(gguf.quants.quant_shape_from_byte_shape(array.shape, raw))
            ggml = raw
        expected_tensors.append({"name": name, "type": int(ggml), "shape": shape, "hex": array.tobytes().hex()})
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return expected_tensors


def metadata_json(alignment):
    def encode(vtype, value, sub):
        if vtype == GGUFValueType.ARRAY:
            inner = sub
            return {"type": int(vtype), "element_type": int(inner),
                    "value": [encode(GGUFValueType.ARRAY if isinstance(v, list) else inner, v,
                                     GGUFValueType.INT32 if isinstance(v, list) else None) for v in value]}
        if vtype == GGUFValueType.FLOAT32:
            value = float(np.float32(value))
        return {"type": int(vtype), "value": value}
    entries = [{"key": "general.architecture", **encode(GGUFValueType.STRING, "tendon-test", None)}]
    if alignment is not None:
        entries.append({"key": "general.alignment", **encode(GGUFValueType.UINT32, alignment, None)})
    entries += [{"key": k, **encode(t, v, s)} for k, t, v, s in METADATA]
    return entries


def write_safetensors(out):
    gen = torch.Generator().manual_seed(3)
    single = {
        "a.weight": torch.randn(3, 4, generator=gen),
        "b.bias": torch.randn(5, generator=gen).to(torch.float16),
        "c.weight": torch.randn(2, 3, generator=gen).to(torch.bfloat16),
        "scalar": torch.tensor(1.5),
    }
    save_file(single, os.path.join(out, "single.safetensors"), metadata={"format": "pt", "note": "tendon"})
    shard_dir = os.path.join(out, "sharded")
    os.makedirs(shard_dir, exist_ok=True)
    shards = {
        "model-00001-of-00002.safetensors": {"layer.0.weight": torch.randn(4, 2, generator=gen),
                                             "layer.0.bias": torch.randn(4, generator=gen).to(torch.bfloat16)},
        "model-00002-of-00002.safetensors": {"layer.1.weight": torch.randn(2, 4, generator=gen).to(torch.float16)},
    }
    weight_map = {}
    expected = {"single": tensor_json(single), "sharded": {}}
    for file, tensors in shards.items():
        save_file(tensors, os.path.join(shard_dir, file), metadata={"format": "pt"})
        weight_map.update({name: file for name in tensors})
        expected["sharded"].update(tensor_json(tensors))
    with open(os.path.join(shard_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, f, indent=2, sort_keys=True)
    return expected


def tensor_json(tensors):
    names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}
    return {name: {"dtype": names[t.dtype], "shape": list(t.shape),
                   "hex": t.contiguous().view(torch.uint8).numpy().tobytes().hex() if t.dim() else
                   t.reshape(1).view(torch.uint8).numpy().tobytes().hex(),
                   "values": t.float().reshape(-1).tolist()}
            for name, t in tensors.items()}


def write_hf_tiny(out):
    """A tiny random HF-style folder for `tendon-train convert` (bf16 weights like save_pretrained writes)."""
    hf = os.path.join(out, "hf_tiny")
    os.makedirs(hf, exist_ok=True)
    gen = torch.Generator().manual_seed(11)
    config = {"architectures": ["Qwen3_5ForCausalLM"], "model_type": "qwen3_5_text", "hidden_size": 256,
              "vocab_size": 32, "num_hidden_layers": 1, "torch_dtype": "bfloat16",
              "action_expert": {"action_dim": 14, "hidden_size": 64}}
    with open(os.path.join(hf, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    # Tiny tokenizer.json written by the tokenizers library itself.
    from tokenizers import Tokenizer, models, pre_tokenizers
    vocab = {chr(ord("a") + i): i for i in range(26)}
    vocab.update({"ab": 26, "abc": 27})
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[("a", "b"), ("ab", "c")]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.add_special_tokens(["<|im_start|>", "<|im_end|>"])
    tok.save(os.path.join(hf, "tokenizer.json"))
    bf = torch.bfloat16
    shards = {
        "model-00001-of-00002.safetensors": {
            "model.embed_tokens.weight": torch.randn(32, 256, generator=gen).to(bf),        # Q4_K-capable rows
            "model.layers.0.mlp.up_proj.weight": torch.randn(8, 512, generator=gen).to(bf),
            "model.layers.0.input_layernorm.weight": torch.randn(256, generator=gen).to(bf),  # 1-D → F32
        },
        "model-00002-of-00002.safetensors": {
            "model.layers.0.self_attn.q_proj.weight": torch.randn(6, 96, generator=gen),   # 32-blocks only
            "model.layers.0.self_attn.o_proj.weight": torch.randn(4, 40, generator=gen).to(bf),  # no whole blocks → F16
            "action_expert.time_embed.fc1.bias": torch.randn(64, generator=gen),
            "model.norm.weight": torch.randn(256, generator=gen).to(torch.float16),
        },
    }
    weight_map = {}
    for file, tensors in shards.items():
        save_file(tensors, os.path.join(hf, file), metadata={"format": "pt"})
        weight_map.update({name: file for name in tensors})
    with open(os.path.join(hf, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, f, indent=2, sort_keys=True)


def write(out):
    os.makedirs(out, exist_ok=True)
    expected = {"safetensors": write_safetensors(out)}
    expected["gguf"] = {
        "python_written.gguf": {"alignment": 32, "metadata": metadata_json(None),
                                "tensors": write_python_gguf(os.path.join(out, "python_written.gguf"))},
        "python_aligned64.gguf": {"alignment": 64, "metadata": metadata_json(64),
                                  "tensors": write_python_gguf(os.path.join(out, "python_aligned64.gguf"), 64)},
    }
    write_hf_tiny(out)
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True, ensure_ascii=False)
    print(f"wrote fixtures to {out}")


def field_value(field):
    """A GGUFReader field as plain Python (arrays element by element, nested arrays recursively)."""
    return field.contents()


def check_gguf(path, reference):
    """`path` (written by Tendon) must hold exactly what `reference` (written by gguf.GGUFWriter) holds."""
    ours, theirs = GGUFReader(path), GGUFReader(reference)
    problems = []
    # Key order is free (ours appends general.alignment last); the set of keys, types and values is not.
    if sorted(ours.fields) != sorted(theirs.fields):
        problems.append(f"metadata keys differ: {sorted(ours.fields)} vs {sorted(theirs.fields)}")
    for key, field in theirs.fields.items():
        if key.startswith("GGUF."):
            continue
        other = ours.fields.get(key)
        if other is None:
            continue
        if other.types != field.types or field_value(other) != field_value(field):
            problems.append(f"{key}: {other.types} {field_value(other)!r} != {field.types} {field_value(field)!r}")
    if [t.name for t in ours.tensors] != [t.name for t in theirs.tensors]:
        problems.append("tensor names/order differ")
    for a, b in zip(ours.tensors, theirs.tensors):
        if a.tensor_type != b.tensor_type or list(a.shape) != list(b.shape) or a.data.tobytes() != b.data.tobytes():
            problems.append(f"tensor {a.name}: {a.tensor_type.name} {list(a.shape)} differs from "
                            f"{b.tensor_type.name} {list(b.shape)} or its bytes differ")
    if ours.alignment != theirs.alignment or ours.data_offset != theirs.data_offset:
        problems.append(f"layout: alignment {ours.alignment}/{theirs.alignment}, data {ours.data_offset}/{theirs.data_offset}")
    return problems


def check_safetensors(path, reference):
    from safetensors import safe_open
    problems = []
    with safe_open(path, "pt") as ours, safe_open(reference, "pt") as theirs:
        if sorted(ours.keys()) != sorted(theirs.keys()):
            problems.append(f"names differ: {sorted(ours.keys())} vs {sorted(theirs.keys())}")
        for name in theirs.keys():
            if name not in ours.keys():
                continue
            a, b = ours.get_tensor(name), theirs.get_tensor(name)
            if a.dtype != b.dtype or a.shape != b.shape or not torch.equal(a, b):
                problems.append(f"{name}: {a.dtype} {list(a.shape)} vs {b.dtype} {list(b.shape)} or values differ")
        if ours.metadata() != {"format": "pt", "writer": "tendon"}:
            problems.append(f"metadata {ours.metadata()}")
    return problems


QUANTS = {"f32": None, "f16": None, "q8_0": Q.Q8_0, "q4_0": Q.Q4_0, "q4_k": Q.Q4_K, "q5_k": Q.Q5_K}


def expected_type(shape, quant, name=""):
    """DESIGN §3: 2-D weights take the requested type when rows fill whole blocks, else F16; 1-D stays F32.
    Under q4_k the action expert's blocks.*.{mlp.fc1, mlp.fc2, attn.v_proj, attn.o_proj}, every
    self_attn.v_proj, the vision merger's linear_fc1/2 and the token embeddings are Q8_0."""
    if quant == "f32" or len(shape) < 2:
        return Q.F32
    if quant == "f16":
        return Q.F16
    rest = name[len("action_expert."):] if name.startswith("action_expert.") else None
    if rest is not None and (rest.startswith(("context_proj.", "time_embed.", "action_in.", "final."))
                             or (rest.startswith("blocks.") and ".modulation." in rest)):
        return Q.F16  # HFToGGUFConverter.keepsHalfPrecision
    wanted = QUANTS[quant]
    expert = name.startswith("action_expert.blocks.") and name.endswith(".weight") and \
        any(part in name for part in (".mlp.fc1.", ".mlp.fc2.", ".attn.v_proj.", ".attn.o_proj."))
    merger = name.endswith(".weight") and ("visual.merger.linear_fc" in name or name.endswith("embed_tokens.weight"))
    if quant == "q4_k" and (expert or merger or name.endswith(".self_attn.v_proj.weight")):
        wanted = Q.Q8_0
    block = gguf.constants.GGML_QUANT_SIZES[wanted][0]
    return wanted if shape[-1] % block == 0 else Q.F16


def check_convert(path, hf, quant):
    from safetensors import safe_open
    reader = GGUFReader(path)
    problems = []
    originals = {}
    for file in sorted(os.listdir(hf)):
        if file.endswith(".safetensors"):
            with safe_open(os.path.join(hf, file), "pt") as f:
                originals.update({k: f.get_tensor(k).float().numpy() for k in f.keys()})
    tensors = {t.name: t for t in reader.tensors}
    if sorted(tensors) != sorted(originals):
        problems.append(f"tensor names differ: {sorted(tensors)} vs {sorted(originals)}")
    for name, original in originals.items():
        t = tensors.get(name)
        if t is None:
            continue
        want = expected_type(original.shape, quant, name)
        shape = list(reversed([int(d) for d in t.shape]))
        if t.tensor_type != want or shape != list(original.shape):
            problems.append(f"{name}: {t.tensor_type.name} {shape}, expected {want.name} {list(original.shape)}")
            continue
        if want in (Q.F32, Q.F16, Q.Q8_0, Q.Q4_0):
            reference = gguf.quants.quantize(original.astype(np.float32), want)
            if reference.tobytes() != t.data.tobytes():
                problems.append(f"{name}: {want.name} bytes differ from gguf.quants.quantize")
        else:
            restored = gguf.quants.dequantize(t.data, want).reshape(original.shape)
            error = float(np.sqrt(np.mean((restored - original) ** 2)) / np.sqrt(np.mean(original ** 2)))
            if error > 0.12:
                problems.append(f"{name}: {want.name} relative RMS error {error:.4f} > 0.12")
    with open(os.path.join(hf, "config.json")) as f:
        config = f.read()
    with open(os.path.join(hf, "tokenizer.json")) as f:
        tokenizer = f.read()
    for key, text in (("tendon.config_json", config), ("tokenizer.huggingface.json", tokenizer)):
        field = reader.fields.get(key)
        if field is None or field.contents() != text:
            problems.append(f"metadata {key} missing or different")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write")
    w.add_argument("--out", required=True)
    c = sub.add_parser("check-gguf")
    c.add_argument("path")
    c.add_argument("--reference", default=None, help="default: python_written.gguf next to PATH")
    st = sub.add_parser("check-safetensors")
    st.add_argument("path")
    st.add_argument("--reference", default=None, help="default: single.safetensors next to PATH")
    v = sub.add_parser("check-convert")
    v.add_argument("path")
    v.add_argument("--hf", required=True)
    v.add_argument("--quant", required=True, choices=sorted(QUANTS))
    args = parser.parse_args()
    if args.command == "write":
        write(args.out)
        return
    if args.command == "check-gguf":
        reference = args.reference or os.path.join(os.path.dirname(args.path), "python_written.gguf")
        problems = check_gguf(args.path, reference)
    elif args.command == "check-safetensors":
        reference = args.reference or os.path.join(os.path.dirname(args.path), "single.safetensors")
        problems = check_safetensors(args.path, reference)
    else:
        problems = check_convert(args.path, args.hf, args.quant)
    for problem in problems:
        print("MISMATCH", problem)
    print("OK" if not problems else f"{len(problems)} mismatch(es)")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
