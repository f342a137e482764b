#!/usr/bin/env bash
# One prepared script for a lent GPU (bench/prepare_gpu.sh packs .device/ here, with the last H200
# session's tuning cache; there: bash .device/gpu.sh "bash bench/gpu_check.sh"; see README's
# "Speed"). Sessions 11-12 ran it on an H200 (bench/RESULTS.md): the convs, matmul 2048^3 and 4096^3,
# the f32 step (56.8% of the peak at a steady clock), the data pipeline and ResNet-50's memory meet
# issues 13 and 14; short are matmul 1024^3 (42%) and f16 (1.06x f32, issue 14 asks 1.5x). Next, in
# this order (sessions 12-13 prepared them, untimed on a card; kernels/KERNELS.md):
# 1. `ONLY="bench timeline gemmtests"` (~4-6 min from the carried cache: each cached shape times just
#    the tiles added since against its recorded choice, 234 candidates for ResNet-18 where all were
#    655): the in-workgroup split-K tiles for 1024^3; the f16 FMA probe (bench's header: does f16
#    math run at 2x f32 here?) and f16acc (what f16 sums would buy in the step's GEMMs); the step's
#    single compute pass (addInPlace, the step scalars' ring write); the kernels compiled per
#    geometry (conv tiles per map size, Winograd transforms, col2im's gather, batch norm's apply);
#    their tests on the card. Since session 15 the kernel rows are timed at a settled clock (~300 ms
#    of work first) and print the first, unsettled batch as "cold": does matmul 1024^3's 42% come
#    from its 3 ms batches at a lowered clock? The header prints the adapter's compute limits.
# 2. `ONLY=profile` (now at the card's working clock), then `ONLY=research` (DenseNet-121 first from
#    the cache alone, then tuning its other shapes; since session 14 its dense blocks keep one
#    feature store read in place: 2,951 dispatches a step where there were 4,486, 9.50 GiB pooled
#    where there were 11.88, by dry runs).
# Session 17 fixed a refusal no card has met yet: since session 16 every task given an existing
# --tune-cache (this script's pretrain section, after the steps wrote the cache) stopped at once;
# tests/tasks_hardware_mode.test.ts now runs the tasks as on a card, on lavapipe.
# Session 12's sections: steps 101/76 s from an empty cache (33 s
# tuned), a timeline 20-25 s, the kernel rows 16-25 s, the GEMM tests 47 s, a pretraining run ~50 s,
# ResNet-50 78 s. PyTorch's figures at the same shapes are in bench/RESULTS.md (session 6):
# `python3 bench/torch_ref.py` when a later card differs. Logs go to a scratch folder, packed into
# $OUT/gpu-logs.tgz at every step (a lease returns at most 8 files from $OUT, and a run cut by its
# time limit keeps what the steps before the cut wrote). One tuning cache ($OUT/tune-cache.json,
# seeded from .device/tune-cache.json) is shared: what is not in it is tuned once (saved after every
# shape timed) and what follows starts tuned. Back here, `deno run --allow-read bench/cache_diff.ts
# bench/tune-cache-h200.json <files_at>/tune-cache.json` lists what each shape gained or lost.
set -uo pipefail
out=${OUT:-/tmp}
cache=$out/tune-cache.json
# a cache carried in .device/ (an earlier call's, on the same card and driver) starts this one tuned
[ -f .device/tune-cache.json ] && [ ! -f "$cache" ] && cp .device/tune-cache.json "$cache"
logs=$(mktemp -d)
pack() { tar czf "$out/gpu-logs.tgz" -C "$logs" . 2>/dev/null; }
step() { pack; echo; echo "=== $1 ($(date +%T))"; }
# ONLY="tests research" runs just those sections (steps, overlap, timeline, pretrain, bench,
# profile, tests, research; gemmtests only when named): a second run takes what the first one's
# time limit cut, from the first one's tuning cache. RESEARCH (backbones), STEP_P, TIMELINE_P,
# PROFILE_P (precisions, default "f32 f16") and LOG_EVERY (default "1 10") narrow a section.
only=" ${ONLY:-steps overlap timeline pretrain bench profile tests research} "
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
want steps && for p in ${STEP_P:-f32 f16}; do
  step "MoCo step, ResNet-18, 224 px, batch 64, $p"
  timeout $([ "$p" = f32 ] && echo 120 || echo 100) deno run "${d[@]}" -A bench/moco_step.ts --no-tf --sizes 224 --batch 64 --steps 4 \
    --precision "$p" --tune-cache "$cache" 2>&1 | tee "$logs/moco-$p.log"
done
# the step's GPU time by timestamps, steps read at once and back to back (session 11 found a card's
# clock falls while it idles between steps read one at a time); f16 against f32 at a settled clock
want overlap && for p in f32 f16; do
  step "host and GPU overlap of the $p step (224 px, batch 64)"
  timeout 100 deno run "${d[@]}" -A bench/step_overlap.ts --size 224 --batch 64 --steps 12 \
    --precision "$p" --tune-cache "$cache" 2>&1 | tee "$logs/overlap-$p.log"
done
# the GPU's own timeline of steps back to back: busy, between passes, idle between steps (session 12:
# the f32 step's passes summed 26.2 ms, the steps back to back took 44.6-47)
want timeline && for p in ${TIMELINE_P:-f32 f16}; do
  step "GPU timeline of the $p step back to back (224 px, batch 64)"
  timeout 100 deno run "${d[@]}" -A bench/step_timeline.ts --size 224 --batch 64 --steps 12 \
    --precision "$p" --tune-cache "$cache" 2>&1 | tee "$logs/timeline-$p.log"
done
# issue 14's pretraining run: the task itself at 224 px, batch 64, four epochs of the synthetic set
# (made there first; 28 steps an epoch, a checkpoint and the kNN monitor at each epoch's end), reading
# loss and accuracy every step and then every 10 (the readback's wait against a host that records
# ahead); the tuning cache above covers its conv shapes
want pretrain && for le in ${LOG_EVERY:-1 10}; do
  step "deno task pretrain, 224 px, batch 64, 4 epochs, --log-every $le"
  timeout 100 deno run "${d[@]}" -A tasks/pretrain.ts --size 224 --batch 64 --epochs 4 --log-every "$le" \
    --tune-cache "$cache" --out "runs/gpu-pretrain-le$le" >"$logs/pretrain-le$le.log" 2>&1
  grep -v "^pretrain step" "$logs/pretrain-le$le.log" | tail -20
  grep "^pretrain step" "$logs/pretrain-le$le.log" | tail -1
  cp "runs/gpu-pretrain-le$le/metrics.jsonl" "$logs/pretrain-le$le-metrics.jsonl" 2>/dev/null
done
# f16acc (session 13): the GEMMs with f16 sums against f32 sums, with the f16 FMA probe in the header;
# 160 s (140 before session 15: each kernel row now settles the clock first, ~0.5 s a row)
want bench && step "bench: peak probe, GPU shapes (ResNet-18 convs at batch 64, matmul 1024-4096), memory, audit, f16acc" &&
timeout 160 deno run "${d[@]}" -A bench/bench.ts --only gpu,memory,audit,f16acc --no-tf --tune-cache "$cache" 2>&1 |
  tee "$logs/bench.log"
want profile && for p in ${PROFILE_P:-f32 f16}; do
  step "where the $p step's time goes (224 px, batch 64)"
  timeout 100 deno run "${d[@]}" -A bench/profile_step.ts --size 224 --batch 64 --target-ms 40 \
    --precision "$p" --tune-cache "$cache" 2>&1 | tee "$logs/profile-$p.log"
done
# just the GEMM tiles' tests (every reg tile, vec4 and scalar fetches, split-K) on the card, and
# the kernels compiled per geometry there (session 13: conv tiles per map size, Winograd transforms,
# col2im's gather, pools, batch norm's apply kernels)
# against their uniform-driven forms
if want gemmtests; then
step "tests of the GEMM tiles on the card"
timeout 80 deno test --no-check "${d[@]}" -A tests/kernels_matmul.test.ts 2>&1 | tee "$logs/tests-gemm.log" | tail -8
timeout 60 deno test --no-check "${d[@]}" -A tests/kernels_conv2d.test.ts tests/kernels_pool.test.ts \
  tests/kernels_batchnorm.test.ts --filter "/per map size|per call|per shape|col2im's gather|both kernel forms| s2 p/" \
  2>&1 | tee "$logs/tests-geometry.log" | tail -8
fi
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
# DenseNet-121 first with what the cache holds (--tune cached: its shapes not in it run the tuner's
# prior, so a figure comes within a minute), then tuning the rest for what its limit allows (its
# 103 shapes never timed outlasted session 12's 80 s; the cache keeps what it timed)
want research && for b in ${RESEARCH:-resnet50 densenet121 resnet18:128}; do
  bs=${b#*:}; [ "$bs" = "$b" ] && bs=64; b=${b%:*}
  if [ "$b" = densenet121 ]; then
    step "MoCo step, $b, 224 px, batch $bs, f32, tuned shapes from the cache only"
    timeout 60 deno run "${d[@]}" -A bench/moco_step.ts --no-tf --sizes 224 --batch "$bs" --steps 2 \
      --backbone "$b" --tune-cache "$cache" --tune cached 2>&1 | tee "$logs/moco-$b-$bs-cached.log"
  fi
  step "MoCo step, $b, 224 px, batch $bs, f32"
  timeout $([ "$b" = densenet121 ] && echo 150 || echo 90) deno run "${d[@]}" -A bench/moco_step.ts --no-tf --sizes 224 --batch "$bs" --steps 2 \
    --backbone "$b" --tune-cache "$cache" 2>&1 | tee "$logs/moco-$b-$bs.log"
done
step "done"; pack
