#!/usr/bin/env python3
"""Writes RUN_FOLDER/host.json, the host description of one benchmark run, from the run's result files and the caller's
facts: CPU, platform, threads, load average before and after, each side's BLAS and versions, sgemm calibration, commit,
and a free-text note (env BENCH_NOTE: say what else ran on the host).

usage: write_host.py RUN_FOLDER [--load-start "1.0 2.0 3.0"] [--load-end "..."] [--threads 2] [--csharp csharp_kd.json]
(--csharp: the Distill result file that describes the C# side, for runs that have no csharp_kd.json)
"""
import argparse
import json
import os
import platform
import subprocess


def read(folder, name):
    path = os.path.join(folder, name)
    if not os.path.exists(path):
        return {"host": {}, "config": {}, "summary": {}}
    with open(path) as f:
        return json.load(f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--load-start")
    ap.add_argument("--load-end")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--csharp", default="csharp_kd.json")
    args = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    ref, kd = read(args.folder, "torch_ref.json"), read(args.folder, args.csharp)
    commit = subprocess.run(["git", "-C", here, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    with open("/proc/loadavg") as f:
        now = [float(x) for x in f.read().split()[:3]]
    host = {
        "run_id": os.path.basename(os.path.normpath(args.folder)), "commit": commit,
        "date_utc": kd.get("date_utc") or ref.get("date_utc"),
        "cpu": ref["host"].get("cpu") or kd["host"].get("cpu"), "platform": platform.platform(), "threads": args.threads,
        "loadavg_start": [float(x) for x in args.load_start.split()] if args.load_start else None,
        "loadavg_end": [float(x) for x in args.load_end.split()] if args.load_end else now,
        "blas": {"torch_ref": (ref.get("torch") or {}).get("blas"), "csharp": (kd.get("torch") or {}).get("blas")},
        "torch_ref": {"torch": (ref.get("torch") or {}).get("torch_version"), "from": ref["config"].get("torch_from"),
                      "openblas_coretype": ref["config"].get("openblas_coretype")},
        "csharp": {"torchsharp": (kd.get("torch") or {}).get("torchsharp"), "dotnet": kd["host"].get("dotnet")},
        "sgemm_gflops": {side: {k.split("/")[2]: round(v, 1) for k, v in d["summary"].items() if k.startswith("calib/gemm/")}
                         for side, d in (("torch_ref", ref), ("csharp", kd))},
        "note": os.environ.get("BENCH_NOTE", ""),
    }
    tmp = os.path.join(args.folder, "host.json.tmp")
    with open(tmp, "w") as f:
        json.dump(host, f, indent=2)
        f.write("\n")
    os.replace(tmp, os.path.join(args.folder, "host.json"))


if __name__ == "__main__":
    main()
