#!/usr/bin/env python3
"""Pairs two benchmark result JSONs by their "summary" keys and prints the values side by side with a cost ratio.

usage: compare.py REF.json OTHER.json        e.g. REF = torch_ref/bench.py's output, OTHER = Distill.Benchmarks' output

cost x = OTHER / REF for times, CPU seconds and MB; REF / OTHER for throughputs (tokens_per_s, gflops): > 1 means
OTHER is slower or uses more memory. Keys found in only one file are listed at the end. A warning is printed when the
two runs differ in thread count, CPU model or BLAS, or when their sgemm calibrations differ by more than 15 %, because
the ratios then partly measure the machine or the BLAS rather than the code. Standard library only.
"""
import json
import sys


def higher_is_better(key):
    return key.endswith("tokens_per_s") or key.endswith("gflops")


def facts(d):
    return {"threads": (d.get("config") or {}).get("threads"),
            "cpu": ((d.get("host") or {}).get("cpu") or {}).get("model"),
            "blas": ((d.get("torch") or {}).get("blas") or {}).get("kind")}


def ratio(key, a, b):
    if not a or not b:
        return float("nan")
    return a / b if higher_is_better(key) else b / a


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    with open(argv[1]) as f:
        ref = json.load(f)
    with open(argv[2]) as f:
        other = json.load(f)
    fr, fo = facts(ref), facts(other)
    for k in fr:
        if fr[k] != fo[k]:
            print("WARNING: %s differs: ref=%r other=%r" % (k, fr[k], fo[k]))
    rs, os_ = ref.get("summary", {}), other.get("summary", {})
    for k in [k for k in rs if k.startswith("calib/gemm/") and k in os_]:
        r = ratio(k, rs[k], os_[k])
        if abs(r - 1) > 0.15:
            print("WARNING: sgemm calibration %s differs by %.0f %% (%.1f vs %.1f GFLOP/s): time ratios include a BLAS/machine ratio"
                  % (k, (r - 1) * 100, rs[k], os_[k]))
    keys = [k for k in rs if k in os_]
    width = max([len(k) for k in keys] + [10])
    print("%-*s %14s %14s %9s" % (width, "key", "ref", "other", "cost x"))
    for k in keys:
        print("%-*s %14.4f %14.4f %9.3f" % (width, k, rs[k], os_[k], ratio(k, rs[k], os_[k])))
    only_ref = [k for k in rs if k not in os_]
    only_other = [k for k in os_ if k not in rs]
    if only_ref:
        print("\nonly in ref:   " + ", ".join(only_ref))
    if only_other:
        print("only in other: " + ", ".join(only_other))


if __name__ == "__main__":
    main(sys.argv)
