"""The recipe's swift sft arguments are named once: the train_service role's train_service_arguments.

The rendered agent configuration of the recipe and tiny workloads (and of the molecule scenario) is
the one the variables gave when each argument was written in five places, so swift's command line
has not changed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "train_service"
# The agent's package, imported as train.sh runs it: the directory that holds it on the path (and no bytecode
# written into it, which the role installs as it is).
sys.dont_write_bytecode = True
if str(ROLE / "files") not in sys.path:
    sys.path.insert(0, str(ROLE / "files"))
from train_agent.config import Config  # noqa: E402  the path above first
from train_agent.swift import CALLBACKS_PLUGIN, RENAMED_ARGUMENTS, swift_command  # noqa: E402

TEMPLATE_PLAY = "Install the training environment on the template instance"
# The recipe's `swift sft` arguments, with its (ms-swift 3) names, in its order.
RECIPE_ARGUMENTS = [
    "model", "train_type", "dataset", "torch_dtype", "num_train_epochs", "per_device_train_batch_size",
    "per_device_eval_batch_size", "learning_rate", "lora_rank", "lora_alpha", "target_modules",
    "gradient_accumulation_steps", "eval_steps", "save_steps", "save_total_limit", "logging_steps", "max_length",
    "output_dir", "add_version", "overwrite_output_dir", "system", "warmup_ratio", "dataloader_num_workers",
    "model_author", "model_name",
]
# Variable prefixes that say whose a variable is; what follows is the name of the setting.
PREFIXES = ("gpu_driver_", "python_env_", "ossfs_mount_", "train_service_", "image_bake_", "training_")
# The rendered arguments before they were named once (read from the five-place variables).
RECIPE_BEFORE = {
    "model": "/mnt/oss-data/DeepSeek-R1-Distill-Qwen-7B", "model_type": None, "template": None, "tuner_type": "lora",
    "dataset": ["/mnt/oss-data/alpaca-gpt4-data-zh#500", "/mnt/oss-data/alpaca-gpt4-data-en#500",
                "/mnt/oss-data/self-cognition#500"],
    "torch_dtype": "bfloat16", "num_train_epochs": 1, "per_device_train_batch_size": 1, "per_device_eval_batch_size": 1,
    "learning_rate": "1e-4", "lora_rank": 8, "lora_alpha": 32, "target_modules": "all-linear",
    "gradient_accumulation_steps": 16, "eval_steps": 50, "save_steps": 10, "save_total_limit": 5, "logging_steps": 5,
    "max_length": 2048, "add_version": False, "overwrite_output_dir": True, "system": "You are a helpful assistant.",
    "warmup_ratio": 0.05, "dataloader_num_workers": 4, "model_author": "swift", "model_name": "swift-robot",
    "split_dataset_ratio": None,
}
TINY_BEFORE = {
    **RECIPE_BEFORE, "model_type": "qwen2", "template": "deepseek_r1",
    # 400 samples a dataset since the handovers (300 steps: the old instance trains on through two).
    "dataset": ["/mnt/oss-data/alpaca-gpt4-data-zh#400", "/mnt/oss-data/alpaca-gpt4-data-en#400",
                "/mnt/oss-data/self-cognition#400"],
    "gradient_accumulation_steps": 4, "save_steps": 3, "logging_steps": 1, "dataloader_num_workers": 0,
    "split_dataset_ratio": 0, "seed": 42,
    # Since the tiny model is pretrained: the rate at which its adapter learns the new name in 300 steps.
    "learning_rate": "1e-3",
}
MOLECULE_BEFORE = {
    **RECIPE_BEFORE, "model": "/mnt/oss-data/tiny-qwen2", "model_type": "qwen2", "template": "deepseek_r1",
    "dataset": ["/mnt/oss-data/alpaca-gpt4-data-zh#80", "/mnt/oss-data/alpaca-gpt4-data-en#80",
                "/mnt/oss-data/self-cognition#80"],
    "gradient_accumulation_steps": 4, "logging_steps": 1, "dataloader_num_workers": 0, "split_dataset_ratio": 0,
}
# The recipe's command line (ms-swift 4, GPU host) before: the role writes the configuration with
# sorted keys, so the arguments come alphabetically, then --output_dir.
RECIPE_COMMAND = [
    "/opt/train-venv/bin/swift", "sft", "--add_version", "False", "--dataloader_num_workers", "4",
    "--dataset", "/mnt/oss-data/alpaca-gpt4-data-zh#500", "/mnt/oss-data/alpaca-gpt4-data-en#500",
    "/mnt/oss-data/self-cognition#500", "--eval_steps", "50", "--gradient_accumulation_steps", "16",
    "--learning_rate", "1e-4", "--logging_steps", "5", "--lora_alpha", "32", "--lora_rank", "8", "--max_length", "2048",
    "--model", "/mnt/oss-data/DeepSeek-R1-Distill-Qwen-7B", "--model_author", "swift", "--model_name", "swift-robot",
    "--num_train_epochs", "1", "--per_device_eval_batch_size", "1", "--per_device_train_batch_size", "1",
    "--save_steps", "10", "--save_total_limit", "5", "--system", "You are a helpful assistant.",
    "--target_modules", "all-linear", "--torch_dtype", "bfloat16", "--tuner_type", "lora", "--warmup_ratio", "0.05",
    "--output_dir", "/mnt/oss-data/output",
]
OUTPUT_DIR = "/mnt/oss-data/output"


def canonical(name: str) -> str:
    """The ms-swift 4 name of an argument the recipe names for ms-swift 3."""
    renamed = {names[3]: new for new, names in RENAMED_ARGUMENTS.items() if names.get(3)}
    return renamed.get(name, name)


CANONICAL = [canonical(name) for name in RECIPE_ARGUMENTS]


def setting(variable: str) -> str:
    """A variable's name without its owner's prefix: train_service_output_dir -> output_dir."""
    name = variable.lstrip("_")
    for prefix in PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def read_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def defaults_files() -> list[Path]:
    """Where variables get their defaults: roles' defaults and vars, project and inventory group_vars."""
    files = [*ROOT.glob("roles/*/defaults/*.yml"), *ROOT.glob("roles/*/vars/*.yml"),
             *ROOT.glob("group_vars/*/*.yml"), *ROOT.glob("inventory/*/group_vars/*/*.yml")]
    return sorted(files)


def definitions(argument: str) -> list[str]:
    """Every place a default names the argument: a variable of that name, or a key of train_service_arguments."""
    found = []
    for path in defaults_files():
        for variable, value in (read_yaml(path) or {}).items():
            where = f"{path.relative_to(ROOT)}:{variable}"
            if setting(variable) == argument:
                found.append(where)
            if variable == "train_service_arguments" and argument in value:
                found.append(f"{where}.{argument}")
    return found


def template_play() -> dict[str, Any]:
    plays = read_yaml(ROOT / "playbooks" / "template_instance.yml")
    return next(play for play in plays if play["name"] == TEMPLATE_PLAY)


def test_the_role_defaults_hold_the_recipe_arguments_by_ms_swift_4_name_in_the_recipes_order():
    arguments = read_yaml(ROLE / "defaults" / "main.yml")["train_service_arguments"]
    recipe = [name for name in CANONICAL if name != "output_dir"]
    assert [name for name in arguments if name in recipe] == recipe
    assert "train_type" not in arguments


@pytest.mark.parametrize("argument", CANONICAL)
def test_each_recipe_argument_has_one_default(argument: str):
    expected = "train_service_output_dir" if argument == "output_dir" else f"train_service_arguments.{argument}"
    assert definitions(argument) == [f"roles/train_service/defaults/main.yml:{expected}"]


def test_each_recipe_argument_has_one_argument_spec_entry():
    options = read_yaml(ROLE / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
    named = sorted(setting(option) for option in options if setting(option) in CANONICAL)
    assert named == ["output_dir"]
    assert options["train_service_arguments"]["type"] == "dict"
    assert options["train_service_argument_overrides"]["type"] == "dict"
    assert options["train_service_argument_overrides"]["default"] == {}


def test_the_template_play_sets_only_the_storage_paths_of_the_arguments():
    variables = template_play()["vars"]
    assert sorted(setting(name) for name in variables if setting(name) in CANONICAL) == ["output_dir"]
    overrides = variables["train_service_argument_overrides"]
    for argument in set(CANONICAL) - {"model", "dataset"}:
        assert f"'{argument}'" not in overrides


def render(tmp_path: Path, play: dict[str, Any], extra_vars: dict[str, Any]) -> dict[str, Any]:
    """The agent configuration the train_service role writes for a play's variables (the role's
    defaults, vars and checks; its other tasks are left out)."""
    role = tmp_path / "roles" / "train_service"
    (role / "tasks").mkdir(parents=True)
    for part in ("defaults", "vars", "meta"):
        (role / part).symlink_to(ROLE / part)
    (tmp_path / "group_vars").symlink_to(ROOT / "group_vars")
    (tmp_path / "vars").symlink_to(ROOT / "playbooks" / "vars")
    config = tmp_path / "config.json"
    (role / "tasks" / "main.yml").write_text(yaml.safe_dump([
        {"name": "Check the swift sft arguments", "ansible.builtin.include_tasks": str(ROLE / "tasks" / "assert.yml")},
        {"name": "Write the configuration as the role does", "ansible.builtin.copy": {
            "content": "{{ __train_service_config | to_nice_json }}\n", "dest": str(config), "mode": "0644"}},
    ]))
    # Not the project's ansible.cfg: only the role, its variables and the play.
    (tmp_path / "ansible.cfg").write_text("[defaults]\n")
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "Render the agent configuration", "hosts": "localhost", "connection": "local", "gather_facts": False,
        **play, "roles": ["train_service"]}], sort_keys=False))
    run = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", str(playbook),
         "-e", json.dumps({"ansible_python_interpreter": sys.executable, **extra_vars})],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**os.environ, "ANSIBLE_ROLES_PATH": str(tmp_path / "roles"),
             "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collections"),  # the collection's filters
             "ANSIBLE_CONFIG": str(tmp_path / "ansible.cfg")})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return json.loads(config.read_text())


def command_line(config: dict[str, Any], tmp_path: Path, major: int = 4) -> list[str]:
    path = tmp_path / "agent-config.json"
    path.write_text(json.dumps(config))
    return swift_command(Config.load(path), major, None, True)


def workload_config(tmp_path: Path, workload: str) -> dict[str, Any]:
    play = template_play()
    return render(tmp_path, {"vars_files": play["vars_files"], "vars": play["vars"]},
                  {"training_workload": workload})


@pytest.mark.parametrize(("workload", "expected"), [("recipe", RECIPE_BEFORE), ("tiny", TINY_BEFORE)])
def test_the_workloads_render_the_same_arguments_as_before(tmp_path: Path, workload: str, expected: dict[str, Any]):
    config = workload_config(tmp_path, workload)
    assert config["arguments"] == expected
    assert config["output_dir"] == OUTPUT_DIR


def test_the_storage_overrides_move_the_model_datasets_and_output_together(tmp_path: Path):
    """-e oss_model_prefix=... (or the mount path, the dataset and output prefixes) moves the training's paths
    with the staging and the policy, which read the same variables."""
    play = template_play()
    config = render(tmp_path, {"vars_files": play["vars_files"], "vars": play["vars"]}, {
        "training_workload": "recipe", "oss_model_prefix": "Other-Model/", "oss_mount_path": "/mnt/elsewhere",
        "oss_dataset_prefixes": ["one/"], "oss_output_prefix": "runs/"})
    assert config["arguments"]["model"] == "/mnt/elsewhere/Other-Model"
    assert config["arguments"]["dataset"] == ["/mnt/elsewhere/one#500"]
    assert config["output_dir"] == "/mnt/elsewhere/runs"


def test_the_recipe_runs_the_same_swift_command_line_as_before(tmp_path: Path):
    config = workload_config(tmp_path, "recipe")
    # What the agent adds since: no check of the model against the ModelScope hub (instances cannot reach
    # it); for ms-swift 4 the callback that saves and stops on a graceful stop, and its plugin's clock (the
    # trainer's step and save times) and exit at that stop's save.
    assert command_line(config, tmp_path) == [*RECIPE_COMMAND, "--check_model", "False",
                                              "--callbacks", "graceful_exit", "train_agent_clock",
                                              "train_agent_stop",
                                              "--external_plugins", str(CALLBACKS_PLUGIN)]
    ms_swift_3 = command_line(config, tmp_path, major=3)
    assert "--tuner_type" not in ms_swift_3
    assert ms_swift_3[ms_swift_3.index("--train_type") + 1] == "lora"
    assert ms_swift_3[ms_swift_3.index("--check_model") + 1] == "False"
    assert ms_swift_3[ms_swift_3.index("--overwrite_output_dir") + 1] == "True"


def test_the_molecule_scenario_renders_the_same_arguments_as_before(tmp_path: Path):
    scenario = read_yaml(ROOT / "molecule" / "train_service" / "molecule.yml")
    config = render(tmp_path, {"vars": scenario["provisioner"]["inventory"]["group_vars"]["all"]}, {})
    assert config["arguments"] == MOLECULE_BEFORE
    assert config["output_dir"] == OUTPUT_DIR


@pytest.mark.parametrize(("overrides", "message"), [
    ({"lora_rank": "16"}, "lora_rank is a string where the argument is a number"),
    ({"dataset": "/mnt/oss-data/one#10"}, "dataset is a string where the argument is a list"),
    ({"output_dir": "/mnt/oss-data/elsewhere"}, "train_service_output_dir"),
    ({"save_steps": -5}, "save_steps is -5; ms-swift needs a positive integer"),
    ({"learning_rate": -1}, "learning_rate is -1; ms-swift needs a number above 0"),
    ({"learning_rate": "fast"}, "learning_rate is 'fast'; ms-swift needs a number above 0"),
    ({"lora_rank": 0}, "lora_rank is 0; ms-swift needs a positive integer"),
    ({"warmup_ratio": 1.5}, "warmup_ratio is 1.5; ms-swift needs a number from 0 to 1"),
])
def test_a_wrong_override_fails_before_anything_is_written(tmp_path: Path, overrides: dict[str, Any], message: str):
    with pytest.raises(AssertionError, match=message):
        render(tmp_path, {"vars": {"train_service_argument_overrides": overrides}}, {})
