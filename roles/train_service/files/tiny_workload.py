#!/usr/bin/env python3
"""Make the tiny training workload: a Qwen2-architecture model, its tokenizer and three datasets.

Stands in for DeepSeek-R1-Distill-Qwen-7B and the recipe's ModelScope datasets where they cannot be
downloaded (tests, localcloud demos). Everything is generated locally and deterministically from a
seed: the tokenizer is a byte-level BPE trained with `tokenizers` on the generated text, the weights
come from `Qwen2ForCausalLM(config)` with a fixed seed. The datasets keep the recipe's layouts:

    alpaca-gpt4-data-zh/train.csv      instruction,input,output
    alpaca-gpt4-data-en/train.csv      instruction,input,output
    self-cognition/self_cognition.jsonl  {"query", "response", "tag"} with {{NAME}}/{{AUTHOR}}

Needs torch, transformers and tokenizers (the training environment has them):

    python tiny_workload.py /mnt/oss-data --model-name tiny-qwen2
"""

# ruff: noqa: RUF001  Chinese punctuation and DeepSeek's special tokens are data here
from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from pathlib import Path

SUBJECTS_EN = ["the river", "a small robot", "the old library", "a green apple", "the night train", "my neighbour",
               "the mountain road", "a paper boat", "the city garden", "a quiet student"]
VERBS_EN = ["describe", "explain", "summarise", "list three facts about", "write a short poem about",
            "give advice about", "compare", "tell a story about"]
SUBJECTS_ZH = ["长江", "小机器人", "老图书馆", "青苹果", "夜班火车", "邻居", "山路", "纸船", "城市花园", "安静的学生"]
VERBS_ZH = ["描述", "解释", "总结", "列出三个关于", "写一首短诗关于", "给出建议关于", "比较", "讲一个故事关于"]
SELF_QUERIES = ["Who are you?", "What is your name?", "Who made you?", "Introduce yourself.", "你是谁？",
                "你叫什么名字？", "谁开发了你？", "请介绍一下你自己。"]
SELF_RESPONSES = ["I am {{NAME}}, an assistant trained by {{AUTHOR}}.", "My name is {{NAME}}; {{AUTHOR}} built me.",
                  "我是{{NAME}}，由{{AUTHOR}}训练的助手。", "我叫{{NAME}}，是{{AUTHOR}}开发的人工智能助手。"]
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>",
                  "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def _sentence(rng: random.Random, words: list[str], length: int, joiner: str) -> str:
    return joiner.join(rng.choice(words) for _ in range(length))


def alpaca_rows(rng: random.Random, count: int, chinese: bool) -> list[dict[str, str]]:
    subjects, verbs = (SUBJECTS_ZH, VERBS_ZH) if chinese else (SUBJECTS_EN, VERBS_EN)
    joiner = "" if chinese else " "
    rows = []
    for _ in range(count):
        subject, verb = rng.choice(subjects), rng.choice(verbs)
        instruction = f"{verb}{subject}" if chinese else f"Please {verb} {subject}."
        context = _sentence(rng, subjects, rng.randint(0, 3), joiner)
        output = _sentence(rng, subjects + verbs, rng.randint(8, 24), joiner)
        rows.append({"instruction": instruction, "input": context, "output": output})
    return rows


def self_cognition_rows(rng: random.Random, count: int) -> list[dict[str, str]]:
    return [{"query": rng.choice(SELF_QUERIES), "response": rng.choice(SELF_RESPONSES),
             "tag": "zh" if i % 2 else "en"} for i in range(count)]


def write_datasets(root: Path, rng: random.Random, samples: int) -> list[str]:
    """Write the three datasets; return all their text (the tokenizer's training corpus)."""
    corpus: list[str] = []
    for name, chinese in (("alpaca-gpt4-data-zh", True), ("alpaca-gpt4-data-en", False)):
        rows = alpaca_rows(rng, samples, chinese)
        target = root / name
        target.mkdir(parents=True, exist_ok=True)
        with (target / "train.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=["instruction", "input", "output"])
            writer.writeheader()
            writer.writerows(rows)
        corpus.extend(value for row in rows for value in row.values())
    rows = self_cognition_rows(rng, samples)
    target = root / "self-cognition"
    target.mkdir(parents=True, exist_ok=True)
    with (target / "self_cognition.jsonl").open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    corpus.extend(row["query"] + " " + row["response"] for row in rows)
    return corpus


def write_model(target: Path, corpus: list[str], seed: int, hidden_size: int, layers: int, vocab_size: int) -> None:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    target.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator([*corpus, "You are a helpful assistant."], trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   bos_token=None, unk_token=None, additional_special_tokens=SPECIAL_TOKENS[1:])
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(target)

    torch.manual_seed(seed)
    config = Qwen2Config(vocab_size=len(fast), hidden_size=hidden_size, intermediate_size=hidden_size * 2,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=4096, tie_word_embeddings=True,
                         eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id, bos_token_id=None,
                         torch_dtype="float32")
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = fast.eos_token_id
    model.generation_config.pad_token_id = fast.pad_token_id
    model.save_pretrained(target, safe_serialization=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="where the model and dataset directories go (the bucket mount)")
    parser.add_argument("--model-name", default="tiny-qwen2", help="directory name of the model under ROOT")
    parser.add_argument("--samples", type=int, default=500, help="rows per dataset")
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--vocab-size", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--force", action="store_true", help="rewrite a workload that is already there")
    args = parser.parse_args(argv)

    marker = args.root / args.model_name / "tiny_workload.json"
    settings = {key: value for key, value in vars(args).items() if key not in ("root", "force")}
    if marker.exists() and not args.force and json.loads(marker.read_text()) == settings:
        print(f"tiny workload already in {args.root}")
        return 0
    rng = random.Random(args.seed)
    corpus = write_datasets(args.root, rng, args.samples)
    write_model(args.root / args.model_name, corpus, args.seed, args.hidden_size, args.layers, args.vocab_size)
    marker.write_text(json.dumps(settings, sort_keys=True) + "\n")
    print(f"tiny workload written to {args.root} (model {args.model_name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
