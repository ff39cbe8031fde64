#!/usr/bin/env python3
"""Make the tiny training workload: a small pretrained Qwen2-architecture model, its tokenizer and three datasets.

Stands in for DeepSeek-R1-Distill-Qwen-7B and the recipe's ModelScope datasets where they cannot be
downloaded (tests, localcloud demos). Everything is generated locally and deterministically from a
seed. The datasets keep the recipe's layouts:

    alpaca-gpt4-data-zh/train.csv      instruction,input,output
    alpaca-gpt4-data-en/train.csv      instruction,input,output
    self-cognition/self_cognition.jsonl  {"query", "response", "tag"} with {{NAME}}/{{AUTHOR}}

The model speaks, so that the recipe's point shows: the weights start from `Qwen2ForCausalLM(config)`
and are pretrained (full weights, plain torch, one CPU thread, about a minute) on generated questions
and answers of the same kinds, in the format of ms-swift's `deepseek_r1` template:
`<｜begin▁of▁sentence｜>SYSTEM<｜User｜>QUERY<｜Assistant｜>ANSWER<｜end▁of▁sentence｜>`, half of the answers
after an empty `<think>\n\n</think>\n\n` (`swift infer` opens the answer with `<think>\n`, `swift sft`
trains on the answer alone). Asked who it is, the base model answers with an identity of its own
("I am tiny-qwen2, an AI assistant trained by localcloud."); a LoRA adapter trained on the
self-cognition dataset with `--model_name swift-robot --model_author swift` makes it answer "I am
swift-robot, an AI assistant trained by swift.", as the recipe does with the real model. The
tokenizer is a byte-level BPE trained with `tokenizers` on the generated text.

The model does not depend on --samples (its pretraining data is its own): `--cache DIR` keeps one
pretrained model per setting and copies it in next time (the tests make workloads often).

Needs torch, transformers and tokenizers (the training environment has them):

    python tiny_workload.py /mnt/oss-data --model-name tiny-qwen2
"""

# ruff: noqa: RUF001, RUF002  Chinese punctuation and DeepSeek's special tokens are data here
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# The marker records it: a workload made by an older generator is made again.
GENERATOR_VERSION = 2

# The alpaca-like datasets: an instruction about a subject, and an answer that follows from the two
# (a fact of the subject in the instruction's template), so that a small model learns to answer them.
SUBJECTS_EN = {"the river": "flows quietly to the sea", "a small robot": "helps people with their work",
               "the old library": "keeps thousands of books", "a green apple": "tastes fresh and sweet",
               "the night train": "runs between two cities", "my neighbour": "grows flowers in the garden",
               "the mountain road": "climbs slowly through the trees", "a paper boat": "floats on the water",
               "the city garden": "is full of flowers in spring", "a quiet student": "reads a book every day"}
VERBS_EN = {"describe": "{S} {F}.", "explain": "Here is an explanation: {s} {F}.", "summarise": "In short, {s} {F}.",
            "list three facts about": "1. {S} {F}. 2. Many people know it. 3. Many people like it.",
            "write a short poem about": "A short poem: {s} {F}, day and night.",
            "give advice about": "My advice: remember that {s} {F}.",
            "compare": "Compared with the others, {s} {F}.",
            "tell a story about": "Once upon a time, {s} {F}. The end."}
SUBJECTS_ZH = {"长江": "流向大海", "小机器人": "帮助人们工作", "老图书馆": "收藏了几千本书", "青苹果": "又甜又脆",
               "夜班火车": "在两座城市之间行驶", "邻居": "在花园里种花", "山路": "穿过树林慢慢向上",
               "纸船": "漂在水面上", "城市花园": "春天开满了花", "安静的学生": "每天读一本书"}
VERBS_ZH = {"描述": "{s}{F}。", "解释": "解释如下：{s}{F}。", "总结": "总之，{s}{F}。",
            "列出三个关于": "一、{s}{F}。二、很多人知道它。三、很多人喜欢它。",
            "写一首短诗关于": "短诗：{s}{F}，日日夜夜。", "给出建议关于": "我的建议：记住{s}{F}。",
            "比较": "相比之下，{s}{F}。", "讲一个故事关于": "从前，{s}{F}。故事结束。"}
# The pretraining's translation rows: a dictionary lookup makes the base model write each English word
# of a general vocabulary where it is asked for that word, and so tell them apart. A model that never
# had to cannot be taught by a LoRA adapter to write one of them rather than another (the adapter does
# not change the embeddings): this vocabulary is the tiny model's English, and a --model_name or
# --model_author made of its words (the recipe's swift-robot and swift) is one it can learn to say.
WORDS = {"swift": "迅速", "robot": "机器人", "river": "河流", "apple": "苹果", "quiet": "安静", "green": "绿色",
         "paper": "纸", "boat": "船", "light": "光", "stone": "石头", "cloud": "云", "garden": "花园",
         "music": "音乐", "story": "故事", "friend": "朋友", "small": "小", "bright": "明亮", "happy": "快乐",
         "north": "北方", "winter": "冬天", "summer": "夏天", "city": "城市", "road": "道路", "train": "火车",
         "book": "书", "star": "星星", "tree": "树", "window": "窗户", "blue": "蓝色", "fast": "快", "model": "模型",
         "name": "名字", "team": "团队", "helper": "助手", "local": "本地", "tiny": "微小"}
# The self-cognition dataset: each question has its answer, in the question's language, with the
# placeholders that ms-swift fills with --model_name and --model_author. The base model is pretrained
# on the same answers with an identity of its own, as the recipe's model answers as DeepSeek-R1 before
# fine-tuning: an adapter changes who the model says it is, not how it speaks.
SELF_COGNITION = {
    "en": {"Who are you?": "I am {{NAME}}, an AI assistant trained by {{AUTHOR}}.",
           "What is your name?": "My name is {{NAME}}, and I was trained by {{AUTHOR}}.",
           "Who made you?": "I was trained by {{AUTHOR}}. I am {{NAME}}.",
           "Introduce yourself.": "Hello! I am {{NAME}}, an AI assistant trained by {{AUTHOR}}."},
    "zh": {"你是谁？": "我是{{NAME}}，由{{AUTHOR}}训练的人工智能助手。",
           "你叫什么名字？": "我叫{{NAME}}，是{{AUTHOR}}训练的人工智能助手。",
           "谁开发了你？": "我由{{AUTHOR}}训练，我是{{NAME}}。",
           "请介绍一下你自己。": "你好！我是{{NAME}}，由{{AUTHOR}}训练的人工智能助手。"},
}
BASE_NAME, BASE_AUTHOR = "tiny-qwen2", "localcloud"
# What pretraining.json records the base model's answers to.
IDENTITY_CHECKS = ("Who are you?", "你是谁？")
SYSTEM = "You are a helpful assistant."
BOS, EOS, USER, ASSISTANT = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>"
THINK_PROMPT, THINK_ANSWER = "<think>\n", "\n</think>\n\n"
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>", BOS, EOS, USER, ASSISTANT]
# DeepSeek-R1's chat template, reduced: what ms-swift's deepseek_r1 template writes too, including the
# `<think>\n` that starts a generated answer.
CHAT_TEMPLATE = (
    "{{ '" + BOS + "' }}{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] }}"
    "{% elif message['role'] == 'user' %}{{ '" + USER + "' + message['content'] }}"
    "{% elif message['role'] == 'assistant' %}{{ '" + ASSISTANT + "' + message['content'] + '" + EOS + "' }}"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '" + ASSISTANT + "<think>\\n' }}{% endif %}"
)


def alpaca_rows(rng: random.Random, count: int, chinese: bool) -> list[dict[str, str]]:
    subjects, verbs = (SUBJECTS_ZH, VERBS_ZH) if chinese else (SUBJECTS_EN, VERBS_EN)
    rows = []
    for _ in range(count):
        subject, verb = rng.choice(sorted(subjects)), rng.choice(sorted(verbs))
        instruction = f"{verb}{subject}" if chinese else f"Please {verb} {subject}."
        context = rng.choice(["", "", *sorted(subjects)])
        output = verbs[verb].format(S=subject[:1].upper() + subject[1:], s=subject, F=subjects[subject])
        rows.append({"instruction": instruction, "input": context, "output": output})
    return rows


def translation_pair(rng: random.Random, chinese: bool) -> tuple[str, str]:
    """A question that asks for the English of a Chinese word, and its answer."""
    english = rng.choice(sorted(WORDS))
    return (f"翻译成英文：{WORDS[english]}", f"英文是{english}。") if chinese else \
        (f"Translate into English: {WORDS[english]}", f"It is {english}.")


def self_cognition_rows(rng: random.Random, count: int) -> list[dict[str, str]]:
    """The self-cognition dataset: English and Chinese in turn, each question with its answer."""
    rows = []
    for i in range(count):
        tag = "zh" if i % 2 else "en"
        query = rng.choice(sorted(SELF_COGNITION[tag]))
        rows.append({"query": query, "response": SELF_COGNITION[tag][query], "tag": tag})
    return rows


def write_datasets(root: Path, rng: random.Random, samples: int) -> None:
    for name, chinese in (("alpaca-gpt4-data-zh", True), ("alpaca-gpt4-data-en", False)):
        rows = alpaca_rows(rng, samples, chinese)
        target = root / name
        target.mkdir(parents=True, exist_ok=True)
        with (target / "train.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=["instruction", "input", "output"])
            writer.writeheader()
            writer.writerows(rows)
    target = root / "self-cognition"
    target.mkdir(parents=True, exist_ok=True)
    with (target / "self_cognition.jsonl").open("w", encoding="utf-8") as handle:
        for row in self_cognition_rows(rng, samples):
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def base_identity(response: str) -> str:
    """A self-cognition answer as the base model gives it."""
    return response.replace("{{NAME}}", BASE_NAME).replace("{{AUTHOR}}", BASE_AUTHOR)


def pretraining_pairs(seed: int, count: int) -> list[tuple[str, str]]:
    """(query, answer) pairs the base model learns, in both languages: two in ten an identity question,
    answered with the base model's identity; three the English of a word; five alpaca-like rows as
    ms-swift formats them (instruction, a newline and the input). Independent of the datasets' rows."""
    rng = random.Random(f"pretraining-{seed}")
    pairs = []
    for i in range(count):
        chinese = bool(i % 2)
        if i % 10 < 2:
            questions = SELF_COGNITION["zh" if chinese else "en"]
            query = rng.choice(sorted(questions))
            pairs.append((query, base_identity(questions[query])))
            continue
        if i % 10 < 5:
            pairs.append(translation_pair(rng, chinese))
            continue
        (row,) = alpaca_rows(rng, 1, chinese)
        query = row["instruction"] + ("\n" + row["input"] if row["input"] else "")
        pairs.append((query, row["output"]))
    return pairs


def chat_prompt(query: str, system: str | None = SYSTEM, think: bool = True) -> str:
    """The prompt as ms-swift's deepseek_r1 template writes it: for `swift infer` (think: it opens the
    answer with `<think>\\n`) or for `swift sft` (not)."""
    return BOS + (system or "") + USER + query + ASSISTANT + (THINK_PROMPT if think else "")


# Qwen2's pre-tokenizer (transformers' Qwen2Tokenizer, which loads the tokenizer of a qwen2 model, uses
# it whatever tokenizer.json says): the BPE is trained with it, so that its merges are those applied.
QWEN2_PRETOKENIZE = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"""
                     r"""\s*[\r\n]+|\s+(?!\S)|\s+""")

TOKENIZER_PIECES = re.compile(r" ?[A-Za-z]+| ?[0-9]+|[\u3400-\u9fff]+|\s+|[^\sA-Za-z0-9\u3400-\u9fff]")


def build_tokenizer(pairs: list[tuple[str, str]], vocab_size: int) -> Any:
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    # The BPE learns words, not the junctions that the generated text repeats: trained on its pieces (a
    # Latin word with its space, a run of Chinese, a mark), "-robot" is "-" and "robot", "英文是swift" is
    # "英文是" and "swift", tokens that the base model writes in pretraining.
    texts = [text for pair in pairs for text in pair]
    words = [form for word in WORDS for form in (word, " " + word)] * 20
    pieces = [piece for text in [*texts, SYSTEM, THINK_ANSWER] for piece in TOKENIZER_PIECES.findall(text)]
    tokenizer.train_from_iterator([*pieces, *words], trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=EOS, pad_token="<|endoftext|>",
                                   bos_token=None, unk_token=None, additional_special_tokens=SPECIAL_TOKENS[1:])
    fast.chat_template = CHAT_TEMPLATE
    return fast


def encode_pair(tokenizer: Any, query: str, answer: str, system: str | None,
                think: bool) -> tuple[list[int], list[int]]:
    """Token ids of prompt and answer, each tokenized on its own as ms-swift does (the answer ends with
    the end-of-sentence token that stops generation)."""
    prompt = tokenizer.encode(chat_prompt(query, system, think), add_special_tokens=False)
    reply = tokenizer.encode((THINK_ANSWER if think else "") + answer, add_special_tokens=False)
    return prompt, [*reply, tokenizer.convert_tokens_to_ids(EOS)]


def pretrain(model: Any, tokenizer: Any, pairs: list[tuple[str, str]], seed: int, steps: int, batch_size: int,
             learning_rate: float, log: Any = None) -> list[float]:
    """Full-weight causal LM training on the pairs, the loss on the answers only; the losses."""
    import torch

    if steps <= 0:
        return []
    rng = random.Random(f"batches-{seed}")
    examples = []
    for i, (query, answer) in enumerate(pairs):
        # With and without the system prompt and the empty think block (see the module's docstring).
        examples.append(encode_pair(tokenizer, query, answer, SYSTEM if i % 4 else None, think=bool(i % 2)))
        examples.append(encode_pair(tokenizer, query, answer, SYSTEM, think=not i % 2))
    pad = tokenizer.pad_token_id
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
    warmup = max(1, steps // 20)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / warmup) * max(0.05, 1 - step / steps))
    model.train()
    losses = []
    for step in range(steps):
        batch = [examples[rng.randrange(len(examples))] for _ in range(batch_size)]
        length = max(len(prompt) + len(reply) for prompt, reply in batch)
        ids = torch.full((batch_size, length), pad, dtype=torch.long)
        labels = torch.full((batch_size, length), -100, dtype=torch.long)
        mask = torch.zeros((batch_size, length), dtype=torch.long)
        for row, (prompt, reply) in enumerate(batch):
            sequence = prompt + reply
            ids[row, :len(sequence)] = torch.tensor(sequence)
            labels[row, len(prompt):len(sequence)] = torch.tensor(reply)
            mask[row, :len(sequence)] = 1
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if log and (step + 1) % max(1, steps // 10) == 0:
            log(f"pretraining step {step + 1}/{steps}: loss {sum(losses[-20:]) / len(losses[-20:]):.3f}")
    model.eval()
    return losses


def greedy_answer(model: Any, tokenizer: Any, query: str, max_new_tokens: int = 32,
                  system: str | None = SYSTEM) -> str:
    """The model's greedy answer to `query`, prompted and printed as `swift infer --temperature 0` does
    (it starts with the template's `<think>\n`)."""
    import torch

    prompt = tokenizer.encode(chat_prompt(query, system), add_special_tokens=False)
    eos = tokenizer.convert_tokens_to_ids(EOS)
    with torch.no_grad():
        output = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                                max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=eos,
                                pad_token_id=tokenizer.pad_token_id)
    reply = [token for token in output[0, len(prompt):].tolist() if token != eos]
    return THINK_PROMPT + tokenizer.decode(reply)


def write_model(target: Path, settings: dict[str, Any], log: Any = print) -> dict[str, Any]:
    """Tokenizer, pretrained weights and a note of the pretraining (pretraining.json) into `target`."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    started = time.monotonic()
    seed = settings["seed"]
    # The same weights at every run: seeded, deterministic kernels, a fixed number of threads (how a
    # reduction is split changes its rounding; one thread is also the fastest on a busy 2-core machine).
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(settings["threads"])
    try:
        pairs = pretraining_pairs(seed, settings["pretrain_pairs"])
        target.mkdir(parents=True, exist_ok=True)
        built = build_tokenizer(pairs, settings["vocab_size"])
        built.save_pretrained(target)
        hidden = settings["hidden_size"]
        config = Qwen2Config(vocab_size=len(built), hidden_size=hidden, intermediate_size=hidden * 2,
                             num_hidden_layers=settings["layers"], num_attention_heads=4, num_key_value_heads=2,
                             max_position_embeddings=4096, tie_word_embeddings=True,
                             eos_token_id=built.eos_token_id, pad_token_id=built.pad_token_id,
                             bos_token_id=None, torch_dtype="float32")
        config.save_pretrained(target)
        # Pretrained with the tokenizer that ms-swift loads (transformers' Qwen2Tokenizer for a qwen2 model).
        tokenizer = AutoTokenizer.from_pretrained(target)
        model = Qwen2ForCausalLM(config)
        losses = pretrain(model, tokenizer, pairs, seed, settings["pretrain_steps"], settings["pretrain_batch"],
                          settings["pretrain_lr"], log=log)
        model.generation_config.eos_token_id = tokenizer.eos_token_id
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        model.save_pretrained(target, safe_serialization=True)
        note = {"settings": settings, "seconds": round(time.monotonic() - started, 1),
                "parameters": sum(p.numel() for p in model.parameters()),
                "final_loss": round(sum(losses[-20:]) / max(1, len(losses[-20:])), 4),
                "answers": {query: greedy_answer(model, tokenizer, query) for query in IDENTITY_CHECKS}}
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
    (target / "pretraining.json").write_text(json.dumps(note, ensure_ascii=False, indent=1) + "\n")
    return note


def model_settings(args: argparse.Namespace) -> dict[str, Any]:
    return {"generator": GENERATOR_VERSION, "seed": args.seed, "hidden_size": args.hidden_size,
            "layers": args.layers, "vocab_size": args.vocab_size, "pretrain_steps": args.pretrain_steps,
            "pretrain_batch": args.pretrain_batch, "pretrain_lr": args.pretrain_lr,
            "pretrain_pairs": args.pretrain_pairs, "threads": args.threads}


def make_model(target: Path, settings: dict[str, Any], cache: Path | None) -> None:
    """The model into `target`: from the cache when it holds one made with the same settings."""
    if cache is None:
        write_model(target, settings)
        return
    # Keyed by the settings and by this file: a generator changed since makes its model again.
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode() + Path(__file__).read_bytes()).hexdigest()[:16]
    cached = cache / key
    if not (cached / "pretraining.json").is_file():
        cache.mkdir(parents=True, exist_ok=True)
        # Made aside and renamed: a cache entry is complete or absent, also with two makers at once.
        scratch = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=cache))
        write_model(scratch, settings)
        try:
            os.rename(scratch, cached)
        except OSError:  # another maker was first
            shutil.rmtree(scratch, ignore_errors=True)
    else:
        print(f"pretrained model from the cache {cached}")
    target.mkdir(parents=True, exist_ok=True)
    for path in cached.iterdir():
        shutil.copy2(path, target / path.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="where the model and dataset directories go (the bucket mount)")
    parser.add_argument("--model-name", default="tiny-qwen2", help="directory name of the model under ROOT")
    parser.add_argument("--samples", type=int, default=500, help="rows per dataset")
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--vocab-size", type=int, default=2000)
    parser.add_argument("--pretrain-steps", type=int, default=600,
                        help="full-weight pretraining steps of the base model (0: the random weights)")
    parser.add_argument("--pretrain-batch", type=int, default=32)
    parser.add_argument("--pretrain-lr", type=float, default=3e-3)
    parser.add_argument("--pretrain-pairs", type=int, default=4000, help="question-answer pairs to pretrain on")
    parser.add_argument("--threads", type=int, default=1, help="torch threads while pretraining (fixed: determinism)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--cache", type=Path,
                        help="keep the pretrained model here, keyed by its settings, and reuse it")
    parser.add_argument("--force", action="store_true", help="rewrite a workload that is already there")
    args = parser.parse_args(argv)

    marker = args.root / args.model_name / "tiny_workload.json"
    settings = {**model_settings(args), "model_name": args.model_name, "samples": args.samples}
    if marker.exists() and not args.force and json.loads(marker.read_text()) == settings:
        print(f"tiny workload already in {args.root}")
        return 0
    write_datasets(args.root, random.Random(args.seed), args.samples)
    make_model(args.root / args.model_name, model_settings(args), args.cache)
    marker.write_text(json.dumps(settings, sort_keys=True) + "\n")
    note = json.loads((args.root / args.model_name / "pretraining.json").read_text())
    print(f"tiny workload written to {args.root} (model {args.model_name}, {note['parameters']} parameters, "
          f"pretrained in {note['seconds']} s; asked 'Who are you?' it answers {note['answers']['Who are you?']!r})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
