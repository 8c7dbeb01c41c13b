#!/usr/bin/env bash
# One benchmark run, PyTorch reference and Distill back to back on this host, into benchmarks/results/<run-id>/:
#   host.json      host description (CPU, memory, load average before/after, BLAS of each side, threads, git commit)
#   torch_ref.json benchmarks/torch_ref/bench.py (calibration, KD kernels, GPT-2 training step naive + chunked)
#   csharp_kd.json Distill.Benchmarks kd (same calibration and KD grid)
#   csharp_models.json Distill.Benchmarks train (GPT-2 training step naive + chunked objective)
# then prints compare.py for both C# files and make_tables.py (tables + issue-17 verdict) for the run. Usage: run_all.sh RUN_ID [--quick] [--repeats K] [--threads T] [--no-check]
# (--no-check skips the chunked-vs-naive value check inside the KD workers; the unit tests cover it).
# Environment: KD_GRID (C# KD grid, default the three issue shapes), REF_KD_GRID (the reference's, default KD_GRID),
# TRAIN_LAYERS (default 12), BENCH_NOTE (free text stored in host.json: say what else ran on the host).
# Needs: Debian python3 + torch (setup_torch.sh when the system has none) + OpenBLAS (setup_openblas.sh); dotnet.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
id=${1:?usage: run_all.sh RUN_ID [--quick] [--repeats K] [--threads T]}
shift
quick=0 repeats=3 threads=2 check=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --repeats) repeats=$2; shift ;;
    --threads) threads=$2; shift ;;
    --no-check) check=(--kd-no-check) ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
out="$here/results/$id"
mkdir -p "$out"
kd_grid=${KD_GRID:-2048x1024x32000,4096x1024x32000,2048x1024x128256}
ref_kd_grid=${REF_KD_GRID:-$kd_grid}
layers=${TRAIN_LAYERS:-12}
[ "$quick" = 1 ] && layers=2
py_flags=(--threads "$threads" --repeats "$repeats" --only calib,kd,train --kd-grid "$ref_kd_grid" --train-layers "$layers" "${check[@]}")
cs_flags=(--threads "$threads" --repeats "$repeats" --layers "$layers")
[ "$quick" = 1 ] && py_flags+=(--quick) && cs_kd_quick=(--quick) || cs_kd_quick=()
load() { cut -d' ' -f1-3 /proc/loadavg; }
load_start=$(load)
dotnet build "$here/Distill.Benchmarks" -c Release -v q >/dev/null
bench=(dotnet "$here/Distill.Benchmarks/bin/Release/net10.0/Distill.Benchmarks.dll")
echo "[run_all] Distill kd" >&2
OMP_NUM_THREADS=$threads "${bench[@]}" kd "${cs_kd_quick[@]}" "${check[@]}" --kd-grid "$kd_grid" --repeats "$repeats" --threads "$threads" --out "$out/csharp_kd.json" >/dev/null
echo "[run_all] Distill train" >&2
OMP_NUM_THREADS=$threads "${bench[@]}" train "${cs_flags[@]}" --out "$out/csharp_models.json" >/dev/null
echo "[run_all] torch reference" >&2
/usr/bin/python3 "$here/torch_ref/bench.py" "${py_flags[@]}" --out "$out/torch_ref.json" >/dev/null
load_end=$(load)
python3 "$here/write_host.py" "$out" --load-start "$load_start" --load-end "$load_end" --threads "$threads"
python3 "$here/compare.py" "$out/torch_ref.json" "$out/csharp_kd.json"
python3 "$here/compare.py" "$out/torch_ref.json" "$out/csharp_models.json"
python3 "$here/make_tables.py" --run "$id"   # the README tables and the issue-17 verdict for this run (stdout)
