#!/usr/bin/env python3
"""Builds small Qwen-style byte-level BPE tokenizers with Hugging Face `tokenizers` (0.23.3) itself and records
the ids it produces, so Tendon's Swift tokenizer can be checked id for id without Python or a model hub.

Two tokenizers are trained on the same generated corpus, differing only in the split regex: Qwen2's and
Qwen3.5's (transformers' tokenization_qwen2.py / tokenization_qwen3_5.py PRETOKENIZE_REGEX). Each is saved
twice: merges as [a, b] pairs (what tokenizers writes) and as "a b" strings (older Qwen files).
Added tokens follow Qwen's tokenizer.json: <|...|> specials and a non-special `<tool_call>`, all
`normalized: false`, appended after the trained vocabulary; plus one `normalized: true` token so the
second (post-normalization) added-token pass is exercised too.

Also records which code points the regex engine (Oniguruma, inside tokenizers) puts in \\s, \\p{L}, \\p{N}
and \\p{M}, so the Swift scanner's use of Unicode general categories is checked on every code point.

Usage: python3 Tools/reference/tokenizer_fixtures.py [--out Tests/Fixtures/tokenizer]
"""
import argparse
import json
import os
import random
import unicodedata

import tokenizers
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from tokenizers import trainers

QWEN2_REGEX = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
QWEN35_REGEX = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
            "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
            "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]
NON_SPECIAL = ["<tool_call>", "</tool_call>"]
NORMALIZED_ADDED = "caf\u00e9!"  # matched after NFC, so "cafe\u0301!" hits it too

WORDS = {
    "en": "the robot arm picks up the red cube and places it in the bowl while the gripper holds steady "
          "I'm you're we've they'll she'd it's don't can't WON'T Shouldn't".split(),
    "de": "Straße Größe über Mädchen schön Fußball Übung äußerst".split(),
    "fr": "garçon élève déjà où naïve cœur français hôpital".split(),
    "zh": "机器人 手臂 抓取 红色 方块 放入 碗中 控制 频率 预测 动作 执行 任务".split(),
    "ja": "ロボット アーム を 使って 箱 を 持ち上げる ひらがな カタカナ 漢字".split(),
    "ko": "로봇 팔 이 빨간 상자 를 집어 그릇 에 넣는다".split(),
    "ar": "الروبوت يلتقط المكعب الأحمر ويضعه في الوعاء".split(),
    "hi": "रोबोट लाल घन उठाता है और उसे कटोरे में रखता है".split(),
    "th": "หุ่นยนต์ หยิบ ลูกบาศก์ สีแดง ประเทศไทย ภาษา".split(),
    "ru": "робот берёт красный куб и кладёт его в миску".split(),
    "emoji": ["👍", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇯🇵", "🇺🇸", "❤️", "🤖", "😀", "🧑🏿‍🔬"],
    "code": ["def", "return", "for i in range(10):", "x += 1", "if (a && b) {", "}", "// comment",
             "print(\"hi\")", "0x1F", "3.14159", "arr[i]", "->", "=>", "!==", "#include <stdio.h>"],
}


def corpus(rng):
    langs = list(WORDS)
    lines = []
    for _ in range(6000):
        lang = rng.choice(langs)
        n = rng.randint(3, 14)
        sep = "" if lang in ("zh", "ja", "th") and rng.random() < 0.5 else " "
        words = [rng.choice(WORDS[lang]) for _ in range(n)]
        line = sep.join(words)
        r = rng.random()
        if r < 0.15:
            line += " " + str(rng.randint(0, 10 ** rng.randint(1, 8)))
        elif r < 0.25:
            line = "    " + line + "\t\t"
        elif r < 0.3:
            line = line + "\r\n"
        elif r < 0.35:
            line = "\t" + line + ".  "
        elif r < 0.4:
            line = rng.choice("=-*a #.") * rng.randint(2, 40) + " " + line
        elif r < 0.45:
            line = line + "\n" + " " * rng.randint(1, 12) + rng.choice(WORDS["code"])
        lines.append(line)
    return lines


CASES = [
    "",
    "Hello world",
    "hello   world",
    "The robot is aloha with dual arms. The control frequency is 50 Hz.",
    "I'm sure you're right, we've seen they'll go; she'd say it's fine. DON'T Can'T WE'VE yOu'Re 'LL 'Ll",
    "'s's 'ſ ''t x'd",
    "机器人抓取红色方块，放入碗中。",
    "ロボットアームを使って箱を持ち上げる",
    "로봇 팔이 빨간 상자를 집어",
    "الروبوت يلتقط المكعب الأحمر",
    "रोबोट लाल घन उठाता है",
    "หุ่นยนต์หยิบลูกบาศก์สีแดง",
    "Привет, мир! Ёлка",
    "family 👨‍👩‍👧‍👦 flag 🏳️‍🌈 🇯🇵🇺🇸 thumbs 👍🏽👍🏿 heart ❤️ scientist 🧑🏿‍🔬",
    "cafe\u0301 nai\u0308ve A\u030a \u1100\u1161\u11a8 e\u0301\u0301 q\u0303 \u0915\u093c",
    "caf\u00e9! cafe\u0301! xcaf\u00e9!y",
    "def f(x):\n\treturn x ** 2  # square\n\nfor i in range(10):\n    print(f(i))\n",
    "if (a && b) { return arr[i]->next; } // done",
    "tabs\t\tand  spaces   \t  mixed \t",
    "trailing spaces   ",
    "   leading spaces",
    "line one\r\nline two\r\n\r\nline four\n\n\n  \n indented",
    " \n \r\n\t\n ",
    "\u00a0nbsp\u00a0\u00a0word\u3000ideographic\u2003em",
    "1234567890 3.14159 1,000,000 2026-11-25 ١٢٣ ४५६ ⅷ ½",
    "<|im_start|>user\nWhat is this?<|im_end|>\n<|im_start|>assistant\n",
    "<|vision_start|><|image_pad|><|image_pad|><|image_pad|><|vision_end|>The robot",
    "x<|endoftext|>y<|endoftext|><|endoftext|> <|im_end|>",
    "<tool_call>{\"name\": \"grasp\"}</tool_call> <tool_call>",
    "<|im_start <|im_start|| <|im_end|>> |im_end|>",
    "!!!???... ---- ==== **** \"quoted\" 'single' (paren) [bracket] {brace}",
    "mixed中文English日本語한국어123abc",
    "ÀÉÎÕÜ àéîõü ß ẞ ǅ ǈ ǋ",
    "\x00\x01\x1f\x7f control \u200b zero width \u200d joiner \ufeff bom",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𐍈 𠜎 \U0001F600",
    "a" * 300,
    "=" * 200 + "\n" + "-" * 50,
    " ".join(["word"] * 50),
    "The robot is aloha with dual arms, waist, and mobile base. Please predict the next 50 control actions to "
    "execute the following task: pick up the red cube",
]

DECODE_CASES = [[], None]  # filled per tokenizer: full round trips plus a cut through a multi-byte character


def make_tokenizer(regex, lines):
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False, trim_offsets=False),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=2500, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(lines, trainer=trainer)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIALS])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in NON_SPECIAL])
    tok.add_tokens([AddedToken(NORMALIZED_ADDED, special=False, normalized=True)])
    return tok


def add_random_merges(doc, count, rng):
    """Extra merges at random ranks, some building a token another merge already builds: tokenizers' BPE
    then depends on its heap order and stale-entry rule, which the Swift port must reproduce."""
    vocab, merges = doc["model"]["vocab"], doc["model"]["merges"]
    pieces = [t for t in vocab if len(t) <= 3]
    next_id = max(vocab.values()) + 1
    seen = {tuple(m) for m in merges}
    added = 0
    while added < count:
        a, b = rng.choice(pieces), rng.choice(pieces)
        if (a, b) in seen or len(a + b) > 8:
            continue
        if a + b not in vocab:
            vocab[a + b] = next_id
            next_id += 1
            pieces.append(a + b)
        merges.insert(rng.randrange(len(merges) + 1), [a, b])
        seen.add((a, b))
        added += 1
    shift = next_id - min(t["id"] for t in doc["added_tokens"])
    for t in doc["added_tokens"]:
        t["id"] += shift


def split_ends(regex, text):
    pieces = pre_tokenizers.Split(Regex(regex), behavior="isolated").pre_tokenize_str(text)
    return [b for _, (_, b) in pieces]


def class_ranges(rx):
    """Code points the regex matches, as [first, last] ranges (surrogates excluded)."""
    pt = pre_tokenizers.Split(Regex(rx), behavior="removed")
    cps = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    kept = bytearray(0x110000)
    for _, (a, b) in pt.pre_tokenize_str("".join(map(chr, cps))):
        for i in range(a, b):
            kept[cps[i]] = 1
    ranges = []
    for c in cps:
        if kept[c]:
            continue
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1][1] = c
        elif ranges and ranges[-1][1] == 0xD7FF and c == 0xE000:
            ranges[-1][1] = c
        else:
            ranges.append([c, c])
    return ranges


FUZZ_POOL = (list(" \t\r\n'sStTlLrReEvVdDmMx\u017f.,!?-=(){}#") + ["\u00a0", "\u3000", "\u2028", "\u0085", "\x0b",
             "\u0301", "\u0308", "\u093c", "\u0e31", "\u200d", "\ufe0f", "é", "ß", "中", "文", "ア", "ก", "ह",
             "1", "7", "٣", "½", "Ⅷ", "👍", "🏽", "🇯", "$", "_", "\u2029",
             "<|im_end|>", "<|im_start", "|>", "<tool_call>", "café!", "cafe\u0301!", "\U0001F9D1", "\U00011930"])


def fuzz_texts(rng, count):
    """Random strings over the characters the scanner's branches turn on."""
    return ["".join(rng.choice(FUZZ_POOL) for _ in range(rng.randint(0, 24))) for _ in range(count)]


def nfc_probes(rng):
    """Inputs for tokenizers' NFC normalizer (its own Unicode data): reordering of every combining mark,
    composition of every canonical decomposition, composites of later Unicode versions, random mark stacks."""
    probes = []
    marks = []
    for c in range(0x110000):
        if 0xD800 <= c <= 0xDFFF:
            continue
        ch = chr(c)
        ccc = unicodedata.combining(ch)
        if ccc:
            marks.append(ch)
            probes.append(ch + "\u0334" if ccc > 1 else "\u0301" + ch)
        d = unicodedata.decomposition(ch)
        if d and not d.startswith("<") and (not 0xAC00 <= c <= 0xD7A3 or c % 97 == 0):
            probes.append(unicodedata.normalize("NFD", ch))
            probes.append(ch)
    later = [(0x11935, 0x11930), (0x1611E, 0x1611E), (0x1611E, 0x1611F), (0x16D67, 0x16D67), (0x113C2, 0x113C2),
             (0x113C2, 0x113B8), (0x105D2, 0x0307), (0x105DA, 0x0307)]
    probes += [chr(a) + chr(b) for a, b in later] + ["e" + chr(a) + chr(b) + "\u0301" for a, b in later]
    bases = ["a", "e", "o", "\u0915", "\u1100", "\u0627", "\U00011347", "\u0d15"]
    for _ in range(400):
        probes.append(rng.choice(bases) + "".join(rng.choice(marks) for _ in range(rng.randint(1, 4)))
                      + rng.choice(["", "\u1161", "\U0001133E", "\u0301"]))
    n = normalizers.NFC()
    return [[p, n.normalize_str(p)] for p in probes]


def long_text(rng):
    return "\n".join(corpus(rng)[:800])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="Tests/Fixtures/tokenizer")
    args = ap.parse_args()
    assert tokenizers.__version__ == "0.23.3", tokenizers.__version__
    os.makedirs(args.out, exist_ok=True)
    lines = corpus(random.Random(1234))
    result = {"tokenizers_version": tokenizers.__version__, "cases": CASES, "tokenizers": {}}
    for name, regex in (("qwen2", QWEN2_REGEX), ("qwen3_5", QWEN35_REGEX)):
        tok = make_tokenizer(regex, lines)
        pairs_path = os.path.join(args.out, f"{name}_merges_pairs.json")
        tok.save(pairs_path)
        with open(pairs_path, encoding="utf-8") as f:
            doc = json.load(f)
        assert isinstance(doc["model"]["merges"][0], list)
        assert all(" " not in a and " " not in b for a, b in doc["model"]["merges"])
        doc["model"]["merges"] = [f"{a} {b}" for a, b in doc["model"]["merges"]]
        with open(os.path.join(args.out, f"{name}_merges_strings.json"), "w", encoding="utf-8") as f:
            json.dump(doc, f, ensure_ascii=False, indent=1)
        reloaded = Tokenizer.from_file(os.path.join(args.out, f"{name}_merges_strings.json"))
        encodings = []
        for text in CASES:
            ids = tok.encode(text).ids
            assert reloaded.encode(text).ids == ids
            encodings.append({"ids": ids,
                              "decoded": tok.decode(ids, skip_special_tokens=False),
                              "decoded_skip_special": tok.decode(ids, skip_special_tokens=True)})
        # Ids that cut a multi-byte character: the decoder's lossy UTF-8 repair.
        cut = [i for i in tok.encode("机器人👨‍👩‍👧‍👦").ids]
        partial = [cut[:k] for k in range(1, len(cut))] + [cut[1:], cut[::2]]
        decodes = [{"ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False)} for ids in partial]
        # The regex alone, on random strings: piece ends in code points (text not normalized).
        fuzz = [{"text": t, "piece_ends": split_ends(regex, t), "ids": tok.encode(t).ids} for t in fuzz_texts(random.Random(7), 400)]
        result["tokenizers"][name] = {"regex": regex, "encodings": encodings, "partial_decodes": decodes,
                                      "vocab_size": tok.get_vocab_size(), "fuzz": fuzz}
    # Stress: Qwen3.5's tokenizer with random extra merges, ids on the same cases and fuzz texts.
    with open(os.path.join(args.out, "qwen3_5_merges_pairs.json"), encoding="utf-8") as f:
        doc = json.load(f)
    add_random_merges(doc, 1500, random.Random(5))
    stress_path = os.path.join(args.out, "stress_merges.json")
    with open(stress_path, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False)
    stress = Tokenizer.from_file(stress_path)
    texts = CASES + [f["text"] for f in result["tokenizers"]["qwen3_5"]["fuzz"]]
    # ignore_merges (Llama-3 style): a word in the vocabulary is taken whole. Give it whole words that the
    # merges never build, from the pre-tokenized cases, so the flag changes ids.
    doc["model"]["ignore_merges"] = True
    vocab = doc["model"]["vocab"]
    next_id = max(max(vocab.values()), max(t["id"] for t in doc["added_tokens"])) + 1
    for text in CASES[:12]:
        for word, _ in stress.pre_tokenizer.pre_tokenize_str(stress.normalizer.normalize_str(text)):
            if word not in vocab and len(word) > 1:
                vocab[word] = next_id
                next_id += 1
    whole_path = os.path.join(args.out, "stress_ignore_merges.json")
    with open(whole_path, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False)
    whole = Tokenizer.from_file(whole_path)
    result["stress"] = {"texts": texts, "ids": [stress.encode(t).ids for t in texts],
                        "ids_ignore_merges": [whole.encode(t).ids for t in texts]}
    with open(os.path.join(args.out, "expected_ids.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False, indent=1)
    classes = {name: class_ranges(rx) for name, rx in
               (("whitespace", r"\s"), ("letter", r"\p{L}"), ("number", r"\p{N}"), ("mark", r"\p{M}"))}
    with open(os.path.join(args.out, "nfc_probes.json"), "w", encoding="utf-8") as f:
        json.dump(nfc_probes(random.Random(11)), f, ensure_ascii=False)
    with open(os.path.join(args.out, "regex_classes.json"), "w", encoding="utf-8") as f:
        json.dump({"engine": "tokenizers " + tokenizers.__version__ + " (Oniguruma)", "classes": classes}, f)
    # A long text for the throughput measurement, with the ids tokenizers gives for it.
    text = long_text(random.Random(99))
    tok = Tokenizer.from_file(os.path.join(args.out, "qwen3_5_merges_pairs.json"))
    with open(os.path.join(args.out, "long_text.json"), "w", encoding="utf-8") as f:
        json.dump({"text": text, "qwen3_5_ids": tok.encode(text).ids}, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
