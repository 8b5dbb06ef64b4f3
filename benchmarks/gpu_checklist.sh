#!/usr/bin/env bash
# What to run when a CUDA GPU is at hand, from the repository root, in two parts that each fit in ten minutes:
#
#   bash benchmarks/gpu_checklist.sh correctness OUT   # the GPU-only tests, the step profile with sync debugging
#   bash benchmarks/gpu_checklist.sh speed OUT         # the benches behind BENCHMARKS.md's GPU tables (JSON)
#
# OUT is a folder for the JSON and the profile. Needs torch with CUDA and timm; Ray is not needed.
set -u -o pipefail
part=${1:?correctness or speed}
out=${2:?a folder for the results}
mkdir -p "$out"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 PYTHONFAULTHANDLER=1
start=$(date +%s)
say() { echo "[$(($(date +%s) - start))s] $*"; }
lockstep="python3 -m savos.cli bench lockstep --device cuda --size 480 854 --frames 24"

case $part in
correctness)
    say "GPU tests (CUDA graphs, lock-step without host waits, engine equal to the CPU's)"
    # The project's warning filters name packages the GPU machine may lack (pydantic): none are needed here.
    timeout -s ABRT 240 python3 -m pytest -q -p no:cacheprovider -o filterwarnings= -o log_level=WARNING \
        tests/inference -k "cuda or graph" -rfEs 2>&1 | grep -v DEBUG | tail -15
    say "step profile, 4 objects, K=16, compiled, every host wait listed"
    timeout -s ABRT 300 python3 benchmarks/step_profile.py --objects 4 --compile --sync-debug >"$out/profile.txt" 2>&1
    head -5 "$out/profile.txt"
    ;;
speed)
    say "resnet50, 4 objects, K=16, compiled: the 1,000 object-frames/s target"
    timeout -s ABRT 240 $lockstep 16 --backbone resnet50 --objects 4 --compile \
        --json "$out/resnet50-compile-k16.json" 2>&1 | grep -v INFO
    say "resnet50 and efficientnet_lite0, K=1..16, 1 and 4 objects"
    timeout -s ABRT 150 $lockstep 1 2 4 8 16 --backbone resnet50 --objects 1 4 \
        --json "$out/resnet50.json" 2>&1 | grep -v INFO
    timeout -s ABRT 120 $lockstep 1 2 4 8 16 --backbone efficientnet_lite0 --objects 1 4 \
        --json "$out/lite0.json" 2>&1 | grep -v INFO
    ;;
*)
    echo "unknown part '$part': correctness or speed" >&2
    exit 2
    ;;
esac
say done
