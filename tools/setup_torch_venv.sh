#!/usr/bin/env bash
# Creates .venv with CPU PyTorch, torchvision, safetensors and scikit-learn from
# this machine's LOCAL wheel folders (no PyPI). Used only by the cross-check
# tests against an independent implementation; never a runtime dependency.
# Exits 0 without a venv where no local wheels exist (those tests then skip).
set -uo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] && .venv/bin/python -c 'import torch, torchvision, safetensors' 2>/dev/null && exit 0
# Only the local indexes: pip's config may also name the public one, which hangs here.
args=()
[ -d /opt/wheels ] && args+=(--find-links /opt/wheels)
idx=--index-url
for d in /opt/pypi/simple /opt/pypi-more/simple; do
  [ -d "$d" ] && args+=("$idx" "file://$d") && idx=--extra-index-url
done
[ ${#args[@]} -gt 0 ] || { echo "no local wheels: torch cross-checks will skip"; exit 0; }
python3 -m venv .venv || exit 0
PIP_CONFIG_FILE=/dev/null timeout 600 .venv/bin/pip install -q "${args[@]}" torch torchvision safetensors numpy scikit-learn 2>/tmp/torch-venv.log \
  || { echo "torch venv install failed: torch cross-checks will skip"; rm -rf .venv; }
exit 0
