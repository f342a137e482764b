#!/usr/bin/env bash
# One prepared script for a lent GPU (bench/prepare_gpu.sh packs .device/ here;
# there: bash .device/gpu.sh "bash bench/gpu_check.sh"; see README's "Speed"),
# ordered by what is still unmeasured: the ResNet-18 MoCo step at
# 224 px, batch 64 in f32 and in f16 (issue 14's targets; batch norm now runs
# as the grid layout on hardware, kernels/batchnorm_grid.ts), where that step
# spends its time (bench/profile_step.ts: each op call of one step timed in
# place by timestamp queries, since session 8), the tuned GPU-shape kernels against
# the peak probe (issue 13's targets), `deno task pretrain` at 224 px (issue 14's
# pretraining run, since session 10), and the tests of
# what runs differently on a GPU (batch norm's grid layout, f16 kernels, the
# f16 training step, every GEMM tile and conv candidate), then the ResNet-50 and DenseNet-121
# steps. The timeouts add up to 840 s before those two (1,000 s with them): a run's 600 s limit cuts
# what the earlier steps leave no time for, so a second run may be needed for the last ones. PyTorch's figures at
# the same shapes are in bench/RESULTS.md (session 6): `python3
# bench/torch_ref.py` when a later card differs. Logs go to a scratch folder, packed into
# $OUT/gpu-logs.tgz at every step (a lease returns at most 8 files from $OUT, and a run cut by its
# time limit keeps what the steps before the cut wrote).
# One tuning cache ($OUT/tune-cache.json) is shared: the f32 step tunes its
# shapes once and the profile, the kernel rows and the audit (the tuned step's
# dispatch grids) start tuned; grad-weight split-K counts are tuner candidates
# since session 8. It is saved after every shape timed (since session 10), so
# a step cut by its timeout while tuning leaves what it timed to the next.
set -uo pipefail
out=${OUT:-/tmp}
cache=$out/tune-cache.json
logs=$(mktemp -d)
pack() { tar czf "$out/gpu-logs.tgz" -C "$logs" . 2>/dev/null; }
step() { pack; echo; echo "=== $1 ($(date +%T))"; }
# ONLY="tests research" runs just those sections (steps, overlap, profile, bench, pretrain, tests,
# research):
# a second run takes what the first one's time limit cut, from the first one's tuning cache
only=" ${ONLY:-steps overlap profile bench pretrain tests research} "
want() { [[ "$only" == *" $1 "* ]]; }
# bench/prepare_gpu.sh's config and lockfile without TF.js (offline, the project's own would fetch it)
d=(); [ -f .device/deno.lock ] && d=(--config .device/deno.json --lock=.device/deno.lock)
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
# stop at once (and keep the lease's minutes) when the card's adapter is not there: sessions 6 and 7
# saw "adapter: none" until the GL libraries were carried (bench/prepare_gpu.sh)
step "adapter"
deno eval 'const a = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
const d = a ? a.info.description || `${a.info.vendor} ${a.info.architecture}` : "none";
console.log(`adapter: ${d}; timestamp-query ${a?.features.has("timestamp-query")}; shader-f16 ${a?.features.has("shader-f16")}; binding limit ${(a?.limits.maxStorageBufferBindingSize ?? 0) / 2 ** 20} MiB`);
if (!a || a.info.isFallbackAdapter || /llvmpipe|lavapipe|swiftshader/i.test(d)) Deno.exit(3);' ||
  { echo "gpu_check: no hardware adapter; stopping"; exit 3; }
# the f32 step tunes every shape of the step (more candidates since session 8: split-K counts, and
# Winograd's inner bmm tuned inside its candidate), so it gets the longest limit; f16 tunes its own
want steps && for p in f32 f16; do
  step "MoCo step, ResNet-18, 224 px, batch 64, $p"
  timeout $([ "$p" = f32 ] && echo 120 || echo 100) deno run "${d[@]}" -A bench/moco_step.ts --no-tf --sizes 224 --batch 64 --steps 4 \
    --precision "$p" --tune-cache "$cache" 2>&1 | tee "$logs/moco-$p.log"
done
# where a back-to-back step loses time against one read every step (session 11: 881 img/s against
# 1,250 on the H200): the step's GPU time by timestamps, host recording and waits, with and without
# uploads (bench/step_overlap.ts)
want overlap && step "host and GPU overlap of the f32 step (224 px, batch 64)" &&
timeout 80 deno run "${d[@]}" -A bench/step_overlap.ts --size 224 --batch 64 --steps 8 \
  --tune-cache "$cache" 2>&1 | tee "$logs/overlap.log"
want profile && step "where the f32 step's time goes (224 px, batch 64)" &&
timeout 100 deno run "${d[@]}" -A bench/profile_step.ts --size 224 --batch 64 --target-ms 40 \
  --tune-cache "$cache" 2>&1 |
  tee "$logs/profile.log"
want bench && step "bench: peak probe, GPU shapes (ResNet-18 convs at batch 64, matmul 1024-4096), memory, audit" &&
timeout 100 deno run "${d[@]}" -A bench/bench.ts --only gpu,memory,audit --no-tf --tune-cache "$cache" 2>&1 |
  tee "$logs/bench.log"
# issue 14's pretraining run: the task itself at 224 px, batch 64, four epochs of the synthetic set
# (made there first; 31 steps an epoch, a checkpoint and the kNN monitor at each epoch's end), reading
# loss and accuracy every step and then every 10 (the readback's wait against a host that records
# ahead); the tuning cache above covers its conv shapes
want pretrain && for le in 1 10; do
  step "deno task pretrain, 224 px, batch 64, 4 epochs, --log-every $le"
  timeout 100 deno run "${d[@]}" -A tasks/pretrain.ts --size 224 --batch 64 --epochs 4 --log-every "$le" \
    --tune-cache "$cache" --out "runs/gpu-pretrain-le$le" >"$logs/pretrain-le$le.log" 2>&1
  grep -v "^pretrain step" "$logs/pretrain-le$le.log" | tail -20
  grep "^pretrain step" "$logs/pretrain-le$le.log" | tail -1
  cp "runs/gpu-pretrain-le$le/metrics.jsonl" "$logs/pretrain-le$le-metrics.jsonl" 2>/dev/null
done
if want tests; then
step "tests of the GPU-only paths on the card"
timeout 100 deno test --no-check "${d[@]}" -A tests/kernels_batchnorm.test.ts tests/train_f16.test.ts \
  tests/kernels_cast.test.ts tests/kernels_optim.test.ts tests/train_gpu_layouts.test.ts 2>&1 |
  tee "$logs/tests.log" | tail -25
# every GPU tile (k steps written out since session 9) and every conv candidate the tuner may pick
# (Winograd F(4×4) among them, with one item a transform invocation on hardware) against the CPU
step "tests of the tuner's candidates on the card (GEMM tiles, conv algorithms)"
timeout 80 deno test --no-check "${d[@]}" -A tests/kernels_matmul.test.ts 2>&1 | tee "$logs/tests-gemm.log" | tail -8
timeout 60 deno test --no-check "${d[@]}" -A tests/kernels_conv2d.test.ts --filter "/every candidate|Winograd|pad 0, odd/" \
  2>&1 | tee "$logs/tests-conv.log" | tail -8
fi
# last, and cut by the run's 600 s limit when what comes before uses its full time: the MoCo step of
# the paper's other backbones (issue 14's research shapes), tuned from the shared cache where their
# shapes repeat ResNet-18's
want research && for b in resnet50 densenet121 resnet18:128; do
  bs=${b#*:}; [ "$bs" = "$b" ] && bs=64; b=${b%:*}
  step "MoCo step, $b, 224 px, batch $bs, f32"
  timeout 80 deno run "${d[@]}" -A bench/moco_step.ts --no-tf --sizes 224 --batch "$bs" --steps 2 \
    --backbone "$b" --tune-cache "$cache" 2>&1 | tee "$logs/moco-$b-$bs.log"
done
step "done"; pack
