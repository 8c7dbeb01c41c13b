#!/usr/bin/env python3
"""Generates the README's performance tables from one run folder under benchmarks/results/.

usage: make_tables.py [--run RUN_ID] [--readme README.md] [--verdict docs/benchmarks.md] [--check]

A run folder holds host.json, torch_ref.json (benchmarks/torch_ref/bench.py), csharp_kd.json and csharp_models.json
(Distill.Benchmarks kd / train). Without --run the newest folder (by name) that has all four is used. The tables go to
stdout; with --readme they replace the text between the markers
    <!-- benchmarks:begin -->  and  <!-- benchmarks:end -->
in that file (written atomically). --verdict FILE writes the verdict on issue 17's targets (memory cut per shape, chunked
time against PyTorch's naive and chunked reference, same run) between
    <!-- benchmarks-verdict:begin -->  and  <!-- benchmarks-verdict:end -->
in FILE the same way. --check exits 1 when the file's tables differ from what would be generated (CI or a
reviewer can tell a hand-edited table). Standard library only.
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
BEGIN, END = "<!-- benchmarks:begin -->", "<!-- benchmarks:end -->"
VERDICT_BEGIN, VERDICT_END = "<!-- benchmarks-verdict:begin -->", "<!-- benchmarks-verdict:end -->"
FILES = ("host.json", "torch_ref.json", "csharp_kd.json", "csharp_models.json")
REQUIRED = ("host.json", "csharp_kd.json")  # a run whose other files are missing gets "n/a" cells
# issue 17's targets: peak-RSS cut (ours naive / ours chunked) per KD shape, and the chunked time bounds.
MEMORY_TARGETS = {(2048, 1024, 32000): 5.0, (4096, 1024, 32000): 10.0, (2048, 1024, 128256): 5.0}
TIME_VS_TORCH_NAIVE, TIME_VS_TORCH_CHUNKED = 0.65, 1.05


def load(run):
    folder = os.path.join(RESULTS, run)
    data = {}
    for name in FILES:
        path = os.path.join(folder, name)
        if name not in REQUIRED and not os.path.exists(path):
            data[name.split(".")[0]] = {}
            continue
        with open(path) as f:
            data[name.split(".")[0]] = json.load(f)
    # csharp_kd_part_*.json: further KD grid points of the same run, measured by separate kd invocations
    for extra in sorted(os.listdir(folder)):
        if extra.startswith("csharp_kd_part_") and extra.endswith(".json"):
            with open(os.path.join(folder, extra)) as f:
                part = json.load(f)
            data["csharp_kd"]["kd_loss"]["results"] += part["kd_loss"]["results"]
            for k, v in part["summary"].items():
                data["csharp_kd"]["summary"].setdefault(k, v)
    return data


def newest_run():
    runs = sorted(d for d in os.listdir(RESULTS)
                  if all(os.path.exists(os.path.join(RESULTS, d, f)) for f in REQUIRED))
    if not runs:
        sys.exit("no run folder under %s with %s" % (RESULTS, " and ".join(REQUIRED)))
    return runs[-1]


def kd_rows(result):
    """{(N, H, V, variant): result row} of a KD section."""
    return {(r["N"], r["H"], r["V"], r["variant"]): r for r in result.get("kd_loss", {}).get("results", []) if "median_s" in r}


def fmt_s(x):
    return "%.2f s" % x if x is not None else "n/a"


def fmt_mb(x):
    return "+%.0f MB" % x if x is not None else "n/a"


def verdict(ok):
    return "met" if ok else "**not met**"


def host_line(run, host):
    cpu = host.get("cpu", {})
    sg = host.get("sgemm_gflops", {})
    ref_blas = (host.get("blas", {}).get("torch_ref") or {})
    load = ""
    if host.get("loadavg_start"):
        load = "; load average %s at the start, %s at the end" % (
            "/".join("%.1f" % x for x in host["loadavg_start"]), "/".join("%.1f" % x for x in host["loadavg_end"]))
    sgemm = ""
    a, b = sg.get("torch_ref", {}).get("mm_1024_cube"), sg.get("csharp", {}).get("mm_1024_cube")
    if a and b:
        sgemm = "; sgemm 1024³ %.0f GFLOP/s (PyTorch) vs %.0f (Distill)" % (a, b)
    torch_version = (host.get("torch_ref") or {}).get("torch")
    ref = ("PyTorch %s on %s%s" % (torch_version, ref_blas.get("kind", "?"),
                                   (" " + ref_blas["openblas_core"]) if ref_blas.get("openblas_core") else "")
           if torch_version else "PyTorch reference not recorded in host.json")
    return ("Run `%s` (commit %s, %s): %s, %d logical CPUs, %d threads; %s, Distill on TorchSharp %s "
            "(MKL)%s%s. %s Numbers from different hosts or runs do not compare; ratios are within this run only."
            % (run, host.get("commit", "?"), (host.get("date_utc") or "?")[:10], cpu.get("model", "?"), cpu.get("logical_cpus", 0),
               host.get("threads", 0), ref, (host.get("csharp") or {}).get("torchsharp", "?"), sgemm, load, host.get("note", "")))


def kd_table(data):
    ref, ours = kd_rows(data["torch_ref"]), kd_rows(data["csharp_kd"])
    shapes = sorted({k[:3] for k in ours}, key=lambda s: (s[2], s[0]))
    lines = ["| shape (N, H, V) | PyTorch naive | PyTorch chunked (1024 rows) | Distill naive | Distill chunked (rows) "
             "| memory cut (Distill naive / chunked) | target | chunked / PyTorch naive time (≤ %.2f) | chunked / PyTorch chunked time (≤ %.2f) |"
             % (TIME_VS_TORCH_NAIVE, TIME_VS_TORCH_CHUNKED),
             "|---|---|---|---|---|---|---|---|---|"]
    for s in shapes:
        rn, rc = ref.get(s + ("naive",)), ref.get(s + ("chunked",))
        on, oc = ours.get(s + ("naive",)), ours.get(s + ("chunked",))

        def cell(r):
            return "%s, %s" % (fmt_s(r["median_s"]), fmt_mb(r["peak_rss_increase_mb"])) if r else "n/a"
        cut = on["peak_rss_increase_mb"] / oc["peak_rss_increase_mb"] if on and oc else None
        target = MEMORY_TARGETS.get(s)
        t_naive = oc["median_s"] / rn["median_s"] if oc and rn else None
        t_chunk = oc["median_s"] / rc["median_s"] if oc and rc else None
        lines.append("| %d, %d, %d | %s | %s | %s | %s (%s) | %s | %s | %s | %s |" % (
            s[0], s[1], s[2], cell(rn), cell(rc), cell(on), cell(oc), oc.get("chunk") if oc else "?",
            "%.1f×" % cut if cut else "n/a",
            ("≥ %g×: %s" % (target, verdict(cut >= target))) if target and cut else "—",
            ("%.2f×: %s" % (t_naive, verdict(t_naive <= TIME_VS_TORCH_NAIVE))) if t_naive else "n/a",
            ("%.2f×: %s" % (t_chunk, verdict(t_chunk <= TIME_VS_TORCH_CHUNKED))) if t_chunk else "n/a"))
    return lines


def cpu_table(data):
    """CPU seconds per call (user + system), less sensitive to other load than wall time."""
    rs, os_ = data["torch_ref"].get("summary", {}), data["csharp_kd"].get("summary", {})
    keys = [k for k in os_ if k.startswith("kd/") and k.endswith("/cpu_s")]
    if not keys:
        return []
    lines = ["", "| CPU seconds per call (user + system) | PyTorch | Distill |", "|---|---|---|"]
    for k in keys:
        lines.append("| `%s` | %s | %.2f |" % (k[:-len("/cpu_s")], "%.2f" % rs[k] if k in rs else "n/a", os_[k]))
    return lines


def train_table(data):
    rs, os_ = data["torch_ref"].get("summary", {}), data["csharp_models"].get("summary", {})
    bases = sorted({k.rsplit("/", 1)[0] for k in os_ if k.startswith("train/") and k.endswith("/time_s")})
    if not bases:
        return []
    lines = ["", "| training step (student fwd + bwd + AdamW, teacher fwd) | PyTorch | Distill | time × | first-step peak, PyTorch | first-step peak, Distill |",
             "|---|---|---|---|---|---|"]
    for b in bases:
        rt, ot = rs.get(b + "/time_s"), os_.get(b + "/time_s")
        rp, op = rs.get(b + "/first_step_peak_rss_increase_mb"), os_.get(b + "/first_step_peak_rss_increase_mb")
        lines.append("| `%s` | %s | %s | %s | %s | %s |" % (
            b, fmt_s(rt), fmt_s(ot), "%.2f" % (ot / rt) if rt and ot else "n/a", fmt_mb(rp), fmt_mb(op)))
    return lines


def render(run):
    data = load(run)
    lines = ["_Generated by `python3 benchmarks/make_tables.py --readme README.md` from `benchmarks/results/%s/`; "
             "do not edit by hand._" % run, "", host_line(run, data["host"]), ""]
    missing = [f for f in FILES if not data[f.split(".")[0]]]
    if missing:
        lines += ["Not in this run: %s." % ", ".join("`%s`" % f for f in missing), ""]
    lines += kd_table(data) + cpu_table(data) + train_table(data)
    return "\n".join(lines) + "\n"


def verdict_text(run):
    """Issue 17's targets against one run: met / not met / not measured, with the numbers."""
    data = load(run)
    ref, ours = kd_rows(data["torch_ref"]), kd_rows(data["csharp_kd"])
    host = data["host"]
    load_note = ""
    if host.get("loadavg_start"):
        load_note = " (load average %s at the start, %s at the end)" % (
            "/".join("%.1f" % x for x in host["loadavg_start"]), "/".join("%.1f" % x for x in host["loadavg_end"]))
    lines = ["_Generated by `python3 benchmarks/make_tables.py --verdict docs/benchmarks.md` from `benchmarks/results/%s/`; "
             "do not edit by hand._" % run, "",
             "Issue 17's targets against run `%s`%s:" % (run, load_note), ""]
    outcomes = []
    for s in sorted(MEMORY_TARGETS, key=lambda x: (x[2], x[0])):
        on, oc = ours.get(s + ("naive",)), ours.get(s + ("chunked",))
        rn, rc = ref.get(s + ("naive",)), ref.get(s + ("chunked",))
        parts = []
        if on and oc:
            cut = on["peak_rss_increase_mb"] / oc["peak_rss_increase_mb"]
            ok = cut >= MEMORY_TARGETS[s]
            outcomes.append(ok)
            parts.append("memory cut %.1f× (+%.0f / +%.0f MB; target ≥ %g×): %s" % (
                cut, on["peak_rss_increase_mb"], oc["peak_rss_increase_mb"], MEMORY_TARGETS[s], verdict(ok)))
        else:
            parts.append("memory: not measured")
        for name, r, bound in (("PyTorch naive", rn, TIME_VS_TORCH_NAIVE), ("PyTorch chunked", rc, TIME_VS_TORCH_CHUNKED)):
            if oc and r:
                x = oc["median_s"] / r["median_s"]
                ok = x <= bound
                outcomes.append(ok)
                parts.append("chunked / %s time %.2f× (%.2f / %.2f s; target ≤ %.2f×): %s" % (
                    name, x, oc["median_s"], r["median_s"], bound, verdict(ok)))
            else:
                parts.append("chunked / %s time: not measured (no %s row in this run)" % (name, name))
        lines.append("- N = %d, H = %d, V = %d: %s." % (s[0], s[1], s[2], "; ".join(parts)))
    measured_all = len(outcomes) == 3 * len(MEMORY_TARGETS)
    lines += ["", "Overall: %s." % (
        "all targets met" if outcomes and all(outcomes) and measured_all
        else "%d of %d measured targets met%s" % (sum(outcomes), len(outcomes), "" if measured_all else
                                                  ", the others not measured in this run"))]
    return "\n".join(lines) + "\n"


def replace_block(path, begin, end, text, check):
    with open(path) as f:
        doc = f.read()
    if begin not in doc or end not in doc:
        sys.exit("%s has no %s ... %s markers" % (path, begin, end))
    head, rest = doc.split(begin, 1)
    _, tail = rest.split(end, 1)
    new = head + begin + "\n" + text + end + tail
    if check:
        if new != doc:
            print("%s: the generated block differs; run make_tables.py" % path)
            return 1
        return 0
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(new)
    os.replace(tmp, path)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run")
    ap.add_argument("--readme")
    ap.add_argument("--verdict")
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    run = args.run or newest_run()
    if not args.readme and not args.verdict:
        sys.stdout.write(render(run))
        sys.stdout.write("\n" + verdict_text(run))
        return 0
    rc = 0
    if args.readme:
        rc |= replace_block(args.readme, BEGIN, END, render(run), args.check)
    if args.verdict:
        rc |= replace_block(args.verdict, VERDICT_BEGIN, VERDICT_END, verdict_text(run), args.check)
    return rc


if __name__ == "__main__":
    sys.exit(main())
