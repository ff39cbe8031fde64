"""The tiny workload (roles/train_service/files/tiny_workload.py): its datasets, and a base model that speaks.

The base model is pretrained when the workload is made (the session's `workload`, from the machine's
cache after the first session), so that the recipe's last step shows something: asked who it is, it
answers as tiny-qwen2, and an adapter trained on the self-cognition dataset teaches it another name.
"""

# ruff: noqa: RUF001  Chinese punctuation is data here
from __future__ import annotations

import csv
import json
import random
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from .conftest import FILES, SAMPLES, load_file

BASE_ANSWER = "<think>\n\n</think>\n\nI am tiny-qwen2, an AI assistant trained by localcloud."

# Run with the training venv's python (torch, transformers): the model's greedy answers as `swift infer
# --temperature 0` gives them, and whether every token of the fine-tuned answers is one the base model
# writes in its pretraining (a LoRA adapter cannot teach a model this small to write another).
PROBE = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import tiny_workload as tw
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

torch.set_num_threads(1)
model_dir = sys.argv[2]
tokenizer = AutoTokenizer.from_pretrained(model_dir)
model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
answers = {query: tw.greedy_answer(model, tokenizer, query) for query in ("Who are you?", "你是谁？")}
written = set()
for query, answer in tw.pretraining_pairs(42, 4000):
    written.update(tw.encode_pair(tokenizer, query, answer, tw.SYSTEM, think=False)[1])
fine_tuned = [response.replace("{{NAME}}", "swift-robot").replace("{{AUTHOR}}", "swift")
              for language in tw.SELF_COGNITION.values() for response in language.values()]
unwritten = sorted({tokenizer.decode([token]) for text in fine_tuned
                    for token in tokenizer.encode(text, add_special_tokens=False) if token not in written})
print(json.dumps({"answers": answers, "unwritten": unwritten}, ensure_ascii=False))
"""


@pytest.fixture(scope="module")
def tiny() -> ModuleType:
    return load_file("tiny_workload", FILES / "tiny_workload.py")


@pytest.fixture(scope="module")
def probe(train_venv: Path, workload: Path) -> dict:
    run = subprocess.run([str(train_venv / "bin" / "python"), "-c", PROBE, str(FILES), str(workload / "tiny-qwen2")],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.splitlines()[-1])


@pytest.mark.slow
def test_the_base_model_answers_who_it_is_in_words_and_not_with_the_new_name(probe: dict, workload: Path):
    assert probe["answers"] == {"Who are you?": BASE_ANSWER,
                                "你是谁？": "<think>\n\n</think>\n\n我是tiny-qwen2，由localcloud训练的人工智能助手。"}
    assert "swift-robot" not in probe["answers"]["Who are you?"]
    # The generator checked the same when it made the model, and wrote it down.
    note = json.loads((workload / "tiny-qwen2" / "pretraining.json").read_text())
    assert note["answers"] == probe["answers"]
    assert note["parameters"] < 1_000_000


@pytest.mark.slow
def test_the_base_model_has_written_every_token_of_the_new_name(probe: dict):
    assert probe["unwritten"] == []


@pytest.mark.slow
def test_the_datasets_have_the_recipe_layouts_and_the_self_cognition_placeholders(workload: Path, tiny: ModuleType):
    for name in ("alpaca-gpt4-data-zh", "alpaca-gpt4-data-en"):
        with (workload / name / "train.csv").open(encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        assert len(rows) == SAMPLES and set(rows[0]) == {"instruction", "input", "output"}
    lines = (workload / "self-cognition" / "self_cognition.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert len(rows) == SAMPLES
    for row in rows:
        # Each question has its answer, in its language; ms-swift fills in --model_name and --model_author.
        assert row["response"] == tiny.SELF_COGNITION[row["tag"]][row["query"]]
        assert "{{NAME}}" in row["response"] and "{{AUTHOR}}" in row["response"]


def test_the_base_model_is_pretrained_on_another_identity_and_on_no_dataset_row(tiny: ModuleType):
    pairs = tiny.pretraining_pairs(42, 4000)
    questions = {**tiny.SELF_COGNITION["en"], **tiny.SELF_COGNITION["zh"]}
    identities = {answer for query, answer in pairs if query in questions}
    assert "I am tiny-qwen2, an AI assistant trained by localcloud." in identities
    assert not [answer for answer in identities if "{{" in answer or "swift" in answer]
    # Its pretraining does not depend on the datasets' size: one model per setting, cached.
    assert tiny.pretraining_pairs(42, 4000) == pairs
    rows = tiny.alpaca_rows(random.Random(1), 3, chinese=False)
    assert rows == tiny.alpaca_rows(random.Random(1), 3, chinese=False)
    for row in rows:
        # The answer follows from the instruction: a subject's fact, readable, learnable.
        subject = next(s for s in tiny.SUBJECTS_EN if row["instruction"].endswith(f" {s}."))
        assert tiny.SUBJECTS_EN[subject] in row["output"]


def test_the_tokenizer_learns_words_not_the_junctions_of_the_generated_text(tiny: ModuleType):
    assert tiny.TOKENIZER_PIECES.findall("I am swift-robot, an AI") == ["I", " am", " swift", "-", "robot", ",", " an",
                                                                      " AI"]
    assert tiny.TOKENIZER_PIECES.findall("英文是swift。") == ["英文是", "swift", "。"]
    # swift infer's prompt ends with `<think>\n`; the model goes on with the rest of the empty think block.
    assert tiny.chat_prompt("Who are you?").endswith("<｜User｜>Who are you?<｜Assistant｜><think>\n")
    assert tiny.chat_prompt("Who are you?", think=False).endswith("<｜Assistant｜>")


def test_a_second_make_reuses_the_cached_model_and_a_changed_setting_does_not(
        tmp_path: Path, tiny: ModuleType, monkeypatch: pytest.MonkeyPatch):
    cache = tmp_path / "cache"
    made = []
    monkeypatch.setattr(tiny, "write_model", lambda target, settings, log=print: made.append(settings) or
                        _fake_model(target))
    for root, extra in (("a", []), ("b", []), ("c", ["--pretrain-steps", "1"])):
        assert tiny.main([str(tmp_path / root), "--samples", "4", "--cache", str(cache), *extra]) == 0
    assert [settings["pretrain_steps"] for settings in made] == [600, 1]
    assert (tmp_path / "b" / "tiny-qwen2" / "model.safetensors").read_text() == "weights"
    assert len(list(cache.iterdir())) == 2
    # The marker says which settings made the workload: a second make with the same ones does nothing.
    (tmp_path / "a" / "tiny-qwen2" / "model.safetensors").write_text("kept")
    assert tiny.main([str(tmp_path / "a"), "--samples", "4", "--cache", str(cache)]) == 0
    assert (tmp_path / "a" / "tiny-qwen2" / "model.safetensors").read_text() == "kept"


def _fake_model(target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    (target / "model.safetensors").write_text("weights")
    (target / "pretraining.json").write_text(json.dumps({"parameters": 1, "seconds": 0, "answers": {
        "Who are you?": BASE_ANSWER}}))
