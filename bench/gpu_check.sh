#!/usr/bin/env bash
# One prepared script for a lent GPU (run through .device/gpu.sh, see README's
# "Speed"): peak probe and the tuned GPU-shape kernels, PyTorch at the same
# shapes, the research-shape MoCo step (with the data pipeline's rate beside it),
# the data pipeline and the dry-run memory count, then the GEMM/conv, augmentation
# and dry-run correctness tests on the card. Logs go to $OUT (or /tmp) as they are written.
set -uo pipefail
out=${OUT:-/tmp}
cache=$out/tune-cache.json
step() { echo; echo "=== $1 ($(date +%T))"; }
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
step "bench: peak, GPU shapes, conv/matmul rows"
timeout 150 deno run -A bench/bench.ts --only gpu,conv,matmul --no-tf --tune-cache "$cache" 2>&1 |
  tee "$out/bench.log"
step "torch reference"
timeout 45 python3 bench/torch_ref.py 2>&1 | tee "$out/torch.log"
step "MoCo step, ResNet-18, 224 px, batch 64"
timeout 120 deno run -A bench/moco_step.ts --no-tf --sizes 224 --batch 64 --steps 4 2>&1 |
  tee "$out/moco.log"
step "data pipeline (host vs GPU augmentation) and dry-run memory, ResNet-18/50 at 224 px"
timeout 90 deno run -A bench/bench.ts --only data,memory 2>&1 | tee "$out/data.log"
step "kernel tests on the card"
timeout 60 deno test -A tests/kernels_matmul.test.ts tests/kernels_tuner.test.ts \
  tests/kernels_device.test.ts 2>&1 | tail -30 | tee "$out/tests.log"
timeout 90 deno test -A tests/kernels_conv2d.test.ts 2>&1 | tail -15 | tee -a "$out/tests.log"
timeout 60 deno test -A tests/kernels_augment.test.ts tests/kernels_dry_run.test.ts 2>&1 |
  tail -10 | tee -a "$out/tests.log"
step "done"
