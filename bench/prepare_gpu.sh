#!/usr/bin/env bash
# Prepares .device/ for a lent GPU in one command, from the project root:
#   bash bench/prepare_gpu.sh [path/to/shared/device/prepare.sh]
# then one `run` with carry [".device"] and
#   bash .device/gpu.sh "bash bench/gpu_check.sh"
# What the shared prepare.sh packs (Deno, the Vulkan loader, the npm cache),
# plus what sessions 6-7 found the card's image lacks and had to add by hand:
# the GL vendor-neutral libraries NVIDIA's Vulkan ICD loads (without them the
# adapter reads "none"); and TF.js's packages left out of the npm cache (the
# GPU check runs with --no-tf) so that .device/ fits the 64 MiB carry.
set -euo pipefail
root=$(git rev-parse --show-toplevel); cd "$root"
prepare=${1:-../shared/device/prepare.sh}
[ -f "$prepare" ] || { echo "prepare_gpu: no $prepare (pass the shared prepare.sh's path)"; exit 2; }
bash "$prepare"
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64-lists'
for pkg in libglvnd0 libegl1 libopengl0 libgl1 libglx0 libgles2; do
  ls .device/${pkg}_*.deb >/dev/null 2>&1 || (cd .device && apt-get $o download "$pkg" >/dev/null)
done
# the tuner's choices from the last H200 session (session 12; keyed by adapter and driver, so a
# different card or driver tunes afresh): bench/gpu_check.sh starts from it, saving a minute or
# more of the lease on an H200
cp bench/tune-cache-h200.json .device/tune-cache.json
npm=.device/deno-dir/npm/registry.npmjs.org
rm -rf "$npm/@tensorflow" "$npm/core-js" "$npm/@types"
# with the project's lockfile Deno fetches every npm package it names (TF.js's too) at the first npm
# import, which fails offline (session 11: `deno task pretrain` on the card): the card runs with a
# config and lockfile of its own that leave TF.js out (bench/gpu_check.sh passes them)
deno eval 'const c = JSON.parse(Deno.readTextFileSync("deno.json"));
for (const k of Object.keys(c.imports)) if (k.startsWith("@tensorflow")) delete c.imports[k];
delete c.tasks; Deno.writeTextFileSync(".device/deno.json", JSON.stringify(c, null, 2));'
rm -f .device/deno.lock
DENO_DIR=$PWD/.device/deno-dir deno cache --config .device/deno.json --lock=.device/deno.lock \
  $(git ls-files '*.ts') >/dev/null 2>&1
rm -rf .device/deno-dir/v8_code_cache_v2*
kib=$(du -sk .device | cut -f1)
echo "prepare_gpu: .device is $((kib / 1024)) MiB (the carry limit is 64 MiB)"
[ "$kib" -le $((64 * 1024)) ] || { echo "prepare_gpu: .device exceeds 64 MiB"; exit 1; }
