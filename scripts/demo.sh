#!/usr/bin/env bash
# make demo: localcloud at 60 times real speed (the one-hour spot protection lasts a minute),
# site.yml (training starts on a spot instance), chaos.yml (the instance is released twice, then
# reclaimed while no zone has spot capacity; training resumes each time and runs to completion, and
# the agent reports it and sets the group to 0 instances), the completion
# event and a bill that no longer grows, then infer.yml (the recipe's last step) asks the base model
# and the adapter the same question ("I am tiny-qwen2, ..." before, "I am swift-robot, ..." after); it
# ends with the run's figures as a short table and where the timeline picture is.
# The playbooks print through the spotfirst.finetune.brief callback (a line per change, the messages
# and the waits' progress, failures in full); ANSIBLE_STDOUT_CALLBACK=default shows every task.
# A demo that ran to its end is torn down first, so that a second `make demo` shows it all again.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_STDOUT_CALLBACK="${ANSIBLE_STDOUT_CALLBACK:-spotfirst.finetune.brief}"
REPORT=.cache/chaos-report.json

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "localcloud up --time-scale 60"
localcloud up --time-scale 60

if [[ -f $REPORT ]] && python -c 'import json, sys; sys.exit(not json.load(open(sys.argv[1]))["training"]["complete"])' "$REPORT"; then
    step "The last demo's training is complete: teardown.yml, to start over"
    ansible-playbook teardown.yml
    rm -f "$REPORT"
fi

step "site.yml: from nothing to training on a spot instance"
ansible-playbook site.yml

step "chaos.yml: release, release, reclaim without spot capacity; wait for completion"
ansible-playbook chaos.yml -e @playbooks/vars/chaos_demo.yml

step "What the agent reported when training ended, and the bill (ten virtual minutes apart)"
localcloud events
localcloud status | grep -E "^(virtual clock|instances)"
localcloud bill | tail -2
sleep 10
localcloud bill | tail -2
step "infer.yml: the base model, then the fine-tuned adapter answer on a one-off instance, released afterwards"
ansible-playbook infer.yml -e infer_max_new_tokens=32

step "The run in figures (bench/chaos_bench.py)"
python bench/chaos_bench.py

step "What fine-tuning changed: the same question to the base model and to the adapter (.cache/infer.json)"
python - .cache/infer.json <<'PY'
import json, re, sys

result = json.load(open(sys.argv[1]))
base = {answer["question"]: answer["answer"] for answer in result.get("base_answers", [])}
def shown(text):  # DeepSeek-R1's empty reasoning left out, on one line
    return " ".join(re.sub(r"^<think>\s*</think>\s*", "", text).split())
for answer in result["answers"]:
    print(f"Q: {answer['question']}")
    if answer["question"] in base:
        print(f"  base model: {shown(base[answer['question']])}")
    print(f"  fine-tuned: {shown(answer['answer'])}   ({result['checkpoint'].rsplit('/', 1)[-1]})")
PY

cat <<'TEXT'

Everything but the instances (released once training was complete) is still up:
`.venv/bin/ansible-playbook status.yml`, `.venv/bin/localcloud status`, `.venv/bin/localcloud events`,
`.venv/bin/localcloud bill`, the bucket.
`.venv/bin/ansible-playbook teardown.yml` releases the
cloud resources; `make down` stops localcloud; `make clean` removes its state and containers.
TEXT
