#!/usr/bin/env bash
# Creates .venv with CPU PyTorch, torchvision, safetensors, NumPy and scikit-learn: the
# independent reference for the cross-check tests (tests/model_torch.test.ts, the probe against
# scikit-learn); never a runtime dependency.
#
# Packages come from wherever pip is configured to take them: its config files (`pip config
# list` shows them: index-url, extra-index-url, find-links, constraint) and PIP_* variables, so
# a contributor's machine, a normal CI runner (PyPI) and an offline machine with local wheel
# folders all get the same venv by their own means. Nothing here names a local folder.
#
# Exits 0 in every case; where nothing can be installed (no pip, no venv module, no reachable
# index) it leaves no .venv and the cross-check tests skip. CI (.ci/run) runs it.
set -uo pipefail
cd "$(dirname "$0")/.."
# torchvision is only looked up, not imported: where its compiled ops do not match the torch
# build, tools/torch_reference.py stubs them before importing it (the models need none).
check='import importlib.util, torch, safetensors, sklearn; assert importlib.util.find_spec("torchvision")'
[ -x .venv/bin/python ] && .venv/bin/python -c "$check" 2>/dev/null && exit 0

skip() { echo "torch venv: $1: torch cross-checks will skip"; rm -rf .venv; exit 0; }
command -v python3 >/dev/null 2>&1 || skip "no python3"
python3 -m pip --version >/dev/null 2>&1 || skip "no pip"

# Where pip will look, as pip itself reports it (for the log; pip applies it on its own).
config=$( (python3 -m pip config list 2>/dev/null; env | grep '^PIP_') | sort -u)
sources=$(grep -iE 'index-url|find-links|no-index|PIP_INDEX|PIP_EXTRA_INDEX|PIP_FIND_LINKS|PIP_NO_INDEX' <<<"$config")
[ -n "$sources" ] || sources="none configured, so PyPI"
echo "torch venv: package sources in pip's configuration: $(tr '\n' ' ' <<<"$sources")"
# An unreachable index (offline machine) should fail in seconds, not after pip's default five
# retries per request: fewer retries unless the configuration chose a number.
grep -qiE '(^|[.:])retries=|^PIP_RETRIES=' <<<"$config" || export PIP_RETRIES=1

python3 -m venv .venv >/dev/null 2>&1 || skip "python3 -m venv failed (Debian: apt-get install python3-venv)"
log=${TMPDIR:-/tmp}/torch-venv.log
timeout 900 .venv/bin/python -m pip install -q torch torchvision safetensors numpy scikit-learn >"$log" 2>&1 ||
  skip "pip install failed or timed out (its output: $log)"
.venv/bin/python -c "$check" 2>>"$log" || skip "the installed packages do not import ($log)"
echo "torch venv: ready ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
exit 0
