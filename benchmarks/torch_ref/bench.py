#!/usr/bin/python3
"""PyTorch CPU reference for Distill's benchmarks (benchmarks/Distill.Benchmarks mirrors it).

Sections (--only calib,kd,train,gen): sgemm/log_softmax/dispatch calibration; the KD loss kernels (naive full logits vs
a Liger-style chunked autograd.Function), forward + backward; a GPT-2-small-shaped distillation training step (naive
full logits and the chunked objective); greedy generation with and without a KV cache.

Protocol: every measurement runs in a fresh child process (this script with --worker JSON) with torch.set_num_threads
(--threads) and OMP_NUM_THREADS; 1 warm-up call, then k timed calls, median reported; peak RSS = VmHWM after the cold
first call minus VmRSS before it (/proc/self/clear_refs reset). Prints one JSON object; --out writes it too. Its
"summary" keys are the ones the C# benchmark writes, so compare.py pairs them.

Needs Debian's python3-torch (1.13, CPU). It links the generic libblas.so.3 (netlib on a stock box, ~3 GFLOP/s):
run setup_openblas.sh once so the workers load OpenBLAS instead (see README.md).
"""
import argparse
import ctypes
import datetime
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_GRID = "2048x1024x32000,4096x1024x32000,2048x1024x128256"
IGNORE = -100


def log(msg):
    sys.stderr.write("[torch_ref] %s\n" % msg)
    sys.stderr.flush()


# ----------------------------------------------------------------------------------------------------------------------
# host and process facts


def proc_status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def mem_available_mb():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        return None
    return None


def cpu_info():
    model, flags, mhz = None, [], None
    with open("/proc/cpuinfo") as f:
        for line in f:
            k, _, v = line.partition(":")
            k, v = k.strip(), v.strip()
            if k == "model name" and model is None:
                model = v
            elif k == "flags" and not flags:
                flags = v.split()
            elif k == "cpu MHz" and mhz is None:
                mhz = float(v)
    wanted = ["fma", "avx", "avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"]
    thp = None
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            thp = f.read().strip()
    except OSError:
        pass
    return {"model": model, "logical_cpus": os.cpu_count(), "mhz": mhz,
            "simd_flags": [x for x in wanted if x in flags],
            "mem_total_mb": (os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")) // 2**20,
            "transparent_hugepage": thp}


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def steal_s():
    with open("/proc/stat") as f:
        parts = f.readline().split()
    return int(parts[8]) / os.sysconf("SC_CLK_TCK") if len(parts) > 8 else 0.0


def blas_env():
    """Which BLAS the torch process mapped, and OpenBLAS's own report when it is OpenBLAS."""
    mapped = set()
    with open("/proc/self/maps") as f:
        for line in f:
            p = line.split()[-1]
            if any(s in p for s in ("blas", "lapack", "mkl")):
                mapped.add(p)
    kind = "openblas" if any("openblas" in p for p in mapped) else "mkl" if any("mkl" in p for p in mapped) else \
        "netlib (generic libblas.so.3)" if mapped else "unknown"
    info = {"kind": kind, "mapped": sorted(os.path.relpath(p, HERE) if p.startswith(HERE) else p for p in mapped)}
    if kind == "openblas":
        try:
            lib = ctypes.CDLL(next(p for p in sorted(mapped) if "openblas" in p))
            lib.openblas_get_config.restype = ctypes.c_char_p
            lib.openblas_get_corename.restype = ctypes.c_char_p
            info["openblas_config"] = lib.openblas_get_config().decode()
            info["openblas_core"] = lib.openblas_get_corename().decode()
            info["openblas_num_threads"] = lib.openblas_get_num_threads()
        except (OSError, AttributeError, StopIteration):
            pass
    return info


class CpuWindow:
    """Process CPU seconds, busy threads and host steal during a block."""

    def __enter__(self):
        self.t, self.r, self.s = time.perf_counter(), os.times(), steal_s()
        return self

    def __exit__(self, *exc):
        wall = time.perf_counter() - self.t
        r = os.times()
        user, sys_ = r.user - self.r.user, r.system - self.r.system
        self.result = {"wall_s": wall, "cpu_user_s": user, "cpu_sys_s": sys_,
                       "avg_busy_threads": (user + sys_) / wall if wall > 0 else None,
                       "host_steal_s": steal_s() - self.s}
        return False


def timed(fn, warmup, repeats):
    for _ in range(warmup):
        fn()
    runs = []
    with CpuWindow() as w:
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(runs), "min_s": min(runs), "max_s": max(runs), "runs_s": runs,
            "k": len(runs), "cpu_during_timed_calls": w.result}


def peak_rss_increase_mb(fn):
    """VmHWM after a cold call minus VmRSS before it (VmHWM reset through /proc/self/clear_refs)."""
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = proc_status_kb("VmRSS")
    fn()
    return (proc_status_kb("VmHWM") - base) / 1024.0, base / 1024.0


# ----------------------------------------------------------------------------------------------------------------------
# workers (run in child processes)


def worker_env(torch):
    return {"torch_version": torch.__version__, "torch_num_threads": torch.get_num_threads(),
            "torch_num_interop_threads": torch.get_num_interop_threads(), "blas": blas_env(),
            "python": platform.python_version(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE")}


def job_calib(torch, job):
    F = torch.nn.functional
    out = {"gemm": []}
    for name, m, k, n in job["gemm_shapes"]:
        g = torch.Generator().manual_seed(0)
        x, w = torch.randn(m, k, generator=g), torch.randn(n, k, generator=g)
        # enough calls for >= 0.5 s of timing, at least `repeats`
        t0 = time.perf_counter()
        F.linear(x, w)
        one = max(time.perf_counter() - t0, 1e-6)
        reps = int(min(50, max(job["repeats"], math.ceil(0.5 / one))))
        r = timed(lambda: F.linear(x, w), job["warmup"], reps)
        out["gemm"].append({"name": name, "op": "F.linear(x[M,K], w[N,K]) = x @ w^T", "M": m, "K": k, "N": n,
                            "median_s": r["median_s"], "k": reps, "min_s": r["min_s"],
                            "gflops": 2.0 * m * k * n / r["median_s"] / 1e9,
                            "weight_read_gb_s": 4.0 * n * k / r["median_s"] / 1e9})
    if job.get("extras", True):
        x = torch.randn(1024, 32000)
        r = timed(lambda: F.log_softmax(x, -1), 1, 5)
        out["log_softmax_1024x32000"] = {"median_s": r["median_s"], "min_s": r["min_s"]}
        a, b = torch.randn(16), torch.randn(16)
        for _ in range(1000):
            a.add_(b)
        t0 = time.perf_counter()
        for _ in range(20000):
            a.add_(b)
        out["dispatch_add_16_elems_us"] = (time.perf_counter() - t0) / 20000 * 1e6
    return out


def kd_inputs(torch, n, h, v, seed):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(n, h, generator=g).requires_grad_(True)
    weight = (torch.randn(v, h, generator=g) * 0.02).requires_grad_(True)
    teacher = torch.randn(n, v, generator=g) * 2.0
    labels = torch.randint(0, v, (n,), generator=g)
    labels[torch.randperm(n, generator=g)[: n // 10]] = IGNORE
    return hidden, weight, teacher, labels


def make_chunked_kl(torch):
    F = torch.nn.functional

    class ChunkedKL(torch.autograd.Function):
        """Fused lm_head + forward KL (T = 1, summed over non-ignored rows), Liger-style: only [chunk, V] logits exist."""

        @staticmethod
        def forward(ctx, h, w, t, labels, chunk):
            n = h.shape[0]
            grad_h = torch.empty_like(h)
            grad_w = torch.zeros_like(w)
            loss = torch.zeros((), dtype=torch.float32)
            for i in range(0, n, chunk):
                j = min(i + chunk, n)
                ign = labels[i:j] == IGNORE
                s = F.linear(h[i:j], w)
                logp_s = F.log_softmax(s, -1)
                del s
                logp_t = F.log_softmax(t[i:j], -1)
                p_t = logp_t.exp()
                loss += logp_t.sub_(logp_s).mul_(p_t).sum(-1).masked_fill_(ign, 0).sum()
                del logp_t
                g = logp_s.exp_().sub_(p_t)
                del p_t
                g.masked_fill_(ign[:, None], 0)
                torch.mm(g, w, out=grad_h[i:j])
                grad_w.addmm_(g.t(), h[i:j])
            ctx.save_for_backward(grad_h, grad_w)
            return loss

        @staticmethod
        def backward(ctx, grad_out):
            grad_h, grad_w = ctx.saved_tensors
            if not torch.equal(grad_out, torch.ones_like(grad_out)):
                grad_h, grad_w = grad_h * grad_out, grad_w * grad_out
            return grad_h, grad_w, None, None, None

    return ChunkedKL


def kd_naive(torch, h, w, t, labels):
    F = torch.nn.functional
    s = F.linear(h, w)
    kl = F.kl_div(F.log_softmax(s, -1), F.log_softmax(t, -1), reduction="none", log_target=True).sum(-1)
    return kl.masked_fill(labels == IGNORE, 0).sum()


def job_kd(torch, job):
    n, hd, v, variant, chunk = job["N"], job["H"], job["V"], job["variant"], job["chunk"]
    h, w, t, labels = kd_inputs(torch, n, hd, v, job["seed"])
    chunked = make_chunked_kl(torch)

    def loss_fn():
        return kd_naive(torch, h, w, t, labels) if variant == "naive" else chunked.apply(h, w, t, labels, chunk)

    box = {}

    def call():
        h.grad = None
        w.grad = None
        loss = loss_fn()
        loss.backward()
        box["loss"] = float(loss)

    t0 = time.perf_counter()
    peak, base = peak_rss_increase_mb(call)           # the cold call is warm-up #1
    first = time.perf_counter() - t0
    r = timed(call, job["warmup"] - 1, job["repeats"])
    out = {"N": n, "H": hd, "V": v, "variant": variant, "chunk": chunk if variant == "chunked" else None,
           "n_valid_tokens": int((labels != IGNORE).sum()), "rss_baseline_mb": base, "peak_rss_increase_mb": peak,
           "first_call_s": first, "loss": box["loss"]}
    out.update(r)
    out["tokens_per_s"] = n / r["median_s"]
    if variant == "chunked" and job.get("check", True):
        call()
        lc, gh, gw = box["loss"], h.grad.clone(), w.grad.clone()
        h.grad = w.grad = None
        ln = kd_naive(torch, h, w, t, labels)
        ln.backward()

        def err(a, b):
            return {"max_abs_over_max_abs": float((a - b).abs().max() / b.abs().max()),
                    "l2_rel": float((a - b).norm() / b.norm())}
        e = {"loss_chunked": lc, "loss_naive": float(ln), "loss_rel": abs(lc - float(ln)) / abs(float(ln)),
             "grad_h": err(gh, h.grad), "grad_W": err(gw, w.grad), "tol": 1e-4}
        e["pass"] = e["loss_rel"] <= 1e-4 and all(x <= 1e-4 for g in ("grad_h", "grad_W") for x in e[g].values())
        out["check_vs_naive"] = e
    return out


def build_gpt2(torch, cfg, n_layer, seed):
    """GPT-2-small-shaped causal LM in plain torch: pre-LN blocks, learned positions, tied lm_head, no dropout."""
    nn, F = torch.nn, torch.nn.functional
    d, heads, vocab, n_ctx = cfg["n_embd"], cfg["n_head"], cfg["vocab"], cfg["n_ctx"]

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.ln_2 = nn.LayerNorm(d, eps=1e-5), nn.LayerNorm(d, eps=1e-5)
            self.c_attn, self.c_proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.c_fc, self.mlp_proj = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

        def forward(self, x, past=None):
            b, tlen, _ = x.shape
            q, k, v = self.c_attn(self.ln_1(x)).split(d, dim=2)
            q, k, v = (z.view(b, tlen, heads, d // heads).transpose(1, 2) for z in (q, k, v))
            if past is not None:
                k, v = torch.cat([past[0], k], 2), torch.cat([past[1], v], 2)
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d // heads))
            if tlen > 1:
                total = k.shape[2]
                mask = torch.ones(tlen, total, dtype=torch.bool).tril(total - tlen)
                att = att.masked_fill(~mask, float("-inf"))
            y = (att.softmax(-1) @ v).transpose(1, 2).reshape(b, tlen, d)
            x = x + self.c_proj(y)
            x = x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))
            return x, (k, v)

    class GPT2(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(n_ctx, d)
            self.h = nn.ModuleList([Block() for _ in range(n_layer)])
            self.ln_f = nn.LayerNorm(d, eps=1e-5)

        def hidden(self, ids, past=None):
            start = 0 if past is None else past[0][0].shape[2]
            pos = torch.arange(start, start + ids.shape[1])
            x = self.wte(ids) + self.wpe(pos)
            new = []
            for i, blk in enumerate(self.h):
                x, kv = blk(x, None if past is None else past[i])
                new.append(kv)
            return self.ln_f(x), new

        def forward(self, ids, past=None):
            x, new = self.hidden(ids, past)
            return F.linear(x, self.wte.weight), new

    torch.manual_seed(seed)
    model = GPT2()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.zero_()
            elif "ln_" in name:
                p.fill_(1.0)
            elif name.endswith("c_proj.weight") or name.endswith("mlp_proj.weight"):
                p.normal_(0.0, 0.02 / math.sqrt(2 * n_layer))
            else:
                p.normal_(0.0, 0.02)
    return model


def job_train(torch, job):
    F = torch.nn.functional
    cfg, n_layer, b, seq, objective = job["model"], job["n_layer"], job["batch"], job["seq"], job["objective"]
    vocab = cfg["vocab"]
    student = build_gpt2(torch, cfg, n_layer, job["seed"] + 1).train()
    teacher = build_gpt2(torch, cfg, n_layer, job["seed"] + 2).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    g = torch.Generator().manual_seed(job["seed"])
    ids = torch.randint(0, vocab, (b, seq), generator=g)
    tokens = b * seq
    ignored = torch.zeros(tokens, dtype=torch.bool)
    ignored[torch.randperm(tokens, generator=g)[: tokens // 10]] = True
    labels = torch.randint(0, vocab, (tokens,), generator=g).masked_fill(ignored, IGNORE)
    n_valid = int((~ignored).sum())
    opt = torch.optim.AdamW(student.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, foreach=False)
    chunked = make_chunked_kl(torch)
    losses = []

    def step():
        opt.zero_grad()
        if objective == "naive":
            with torch.no_grad():
                t_logits, _ = teacher(ids)
            s_logits, _ = student(ids)
            kl = F.kl_div(F.log_softmax(s_logits.view(-1, vocab), -1), F.log_softmax(t_logits.view(-1, vocab), -1),
                          reduction="none", log_target=True).sum(-1)
            loss = kl.masked_fill(ignored, 0).sum() / n_valid
        else:
            # chunked objective: student hidden states into the fused lm_head + KL function (teacher logits given)
            with torch.no_grad():
                t_logits, _ = teacher(ids)
            s_hidden, _ = student.hidden(ids)
            loss = chunked.apply(s_hidden.view(tokens, -1), student.wte.weight, t_logits.view(tokens, vocab), labels,
                                 job["chunk"]) / n_valid
        loss.backward()
        opt.step()
        losses.append(float(loss))

    t0 = time.perf_counter()
    peak, _ = peak_rss_increase_mb(step)
    first = time.perf_counter() - t0
    r = timed(step, job["warmup"] - 1, job["repeats"])
    out = {"n_layer": n_layer, "batch": b, "seq": seq, "objective": objective,
           "chunk": job["chunk"] if objective == "chunked" else None, "tokens_per_step": tokens,
           "student_params": sum(p.numel() for p in student.parameters()), "first_step_s": first,
           "first_step_peak_rss_increase_mb": peak, "loss_first_step": losses[0], "loss_after_steps": losses[-1]}
    out.update(r)
    out["tokens_per_s"] = tokens / r["median_s"]
    return out


def job_gen(torch, job):
    cfg, n_layer = job["model"], job["n_layer"]
    model = build_gpt2(torch, cfg, n_layer, job["seed"] + 1).eval()
    g = torch.Generator().manual_seed(job["seed"])
    prompt = torch.randint(0, cfg["vocab"], (1, job["prompt"]), generator=g)
    out = {"n_layer": n_layer, "prompt_tokens": job["prompt"], "new_tokens": job["new"], "batch": 1, "dtype": "float32",
           "results": {}}
    tokens = {}
    for mode in job["modes"]:
        box = {}

        def generate():
            with torch.no_grad():
                seq, new, past, prefill = prompt, [], None, None
                for i in range(job["new"]):
                    t0 = time.perf_counter()
                    if mode == "kv_cache":
                        logits, past = model(seq if past is None else seq[:, -1:], past)
                    else:
                        logits, _ = model(seq)
                    nxt = logits[:, -1].argmax(-1, keepdim=True)
                    if i == 0:
                        prefill = time.perf_counter() - t0
                    seq = torch.cat([seq, nxt], 1)
                    new.append(int(nxt))
                box["tokens"], box["prefill"] = new, prefill

        r = timed(generate, job["warmup"], job["repeats"])
        r["tokens_per_s"] = job["new"] / r["median_s"]
        if mode == "kv_cache":
            r["prefill_time_s"] = box["prefill"]
            r["decode_time_ms_per_token"] = (r["median_s"] - box["prefill"]) / (job["new"] - 1) * 1e3
        out["results"][mode] = r
        tokens[mode] = box["tokens"]
    out["tokens_match"] = len(set(tuple(x) for x in tokens.values())) == 1
    if "kv_cache" in out["results"] and "no_cache" in out["results"]:
        out["speedup_kv_cache"] = out["results"]["no_cache"]["median_s"] / out["results"]["kv_cache"]["median_s"]
    return out


def worker_main(spec):
    job = json.loads(spec)
    import torch
    torch.set_num_threads(job["threads"])
    fn = {"calib": job_calib, "kd": job_kd, "train": job_train, "gen": job_gen}[job["kind"]]
    t0 = time.perf_counter()
    res = fn(torch, job)
    res["worker_wall_s"] = time.perf_counter() - t0
    res["env"] = worker_env(torch)
    sys.stdout.write(json.dumps(res) + "\n")


# ----------------------------------------------------------------------------------------------------------------------
# driver


def openblas_lib_dir(root):
    d = os.path.join(root, "usr", "lib", "x86_64-linux-gnu", "openblas-openmp")
    return d if os.path.exists(os.path.join(d, "libblas.so.3")) else None


def local_torch_paths(root):
    """(PYTHONPATH, library folders) of a torch unpacked by setup_torch.sh, or None when the system Python has torch."""
    if subprocess.run([sys.executable, "-c", "import torch"], capture_output=True).returncode == 0:
        return None
    site = os.path.join(root, "usr", "lib", "python3", "dist-packages")
    if not os.path.exists(os.path.join(site, "torch", "__init__.py")):
        sys.exit("this Python cannot import torch and %s has none: run setup_torch.sh (or install python3-torch)" % root)
    libs = sorted({d for d, _, files in os.walk(root) if any(".so" in f for f in files)
                   and "dist-packages" not in d})
    return site, libs


def run_worker(args, job, blas, timeout):
    job = dict(job, threads=args.threads)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    lib_path = [blas["dir"]] if blas["mode"] == "openblas" else []
    if blas["torch"]:
        env["PYTHONPATH"] = blas["torch"][0]
        lib_path += blas["torch"][1]
    if lib_path:
        env["LD_LIBRARY_PATH"] = ":".join(lib_path + ([env["LD_LIBRARY_PATH"]] if env.get("LD_LIBRARY_PATH") else []))
    if blas["mode"] == "openblas" and blas["coretype"]:
        env["OPENBLAS_CORETYPE"] = blas["coretype"]
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(job)]
    try:
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": "timeout after %d s" % timeout, "job": job}
    if p.returncode != 0:
        return {"error": "worker exit %d: %s" % (p.returncode, p.stderr[-2000:]), "job": job}
    return json.loads(p.stdout.strip().splitlines()[-1])


def build_summary(result):
    s = {}
    for prefix, section in (("calib", "calibration"), ("calib_end", "calibration_end")):
        c = result.get(section) or {}
        for gm in c.get("gemm", []):
            s["%s/gemm/%s/gflops" % (prefix, gm["name"])] = gm["gflops"]
        if "log_softmax_1024x32000" in c:
            s["%s/log_softmax_1024x32000/time_s" % prefix] = c["log_softmax_1024x32000"]["median_s"]
        if "dispatch_add_16_elems_us" in c:
            s["%s/dispatch_add_16_elems/time_us" % prefix] = c["dispatch_add_16_elems_us"]
    for r in (result.get("kd_loss") or {}).get("results", []):
        if "median_s" in r:
            key = "kd/%s/N%d_H%d_V%d" % (r["variant"], r["N"], r["H"], r["V"])
            s[key + "/time_s"] = r["median_s"]
            s[key + "/peak_rss_increase_mb"] = r["peak_rss_increase_mb"]
            cpu = r["cpu_during_timed_calls"]
            s[key + "/cpu_s"] = (cpu["cpu_user_s"] + cpu["cpu_sys_s"]) / r["k"]
    for r in result.get("gpt2_train", []):
        if "median_s" in r:
            key = "train/gpt2_L%d_b%dx%d" % (r["n_layer"], r["batch"], r["seq"])
            if r["objective"] != "naive":
                key += "/" + r["objective"]
            s[key + "/time_s"] = r["median_s"]
            s[key + "/tokens_per_s"] = r["tokens_per_s"]
            s[key + "/first_step_peak_rss_increase_mb"] = r["first_step_peak_rss_increase_mb"]
    gen = result.get("gpt2_generate") or {}
    for mode, r in gen.get("results", {}).items():
        key = "gen/gpt2_L%d_p%d_n%d/%s" % (gen["n_layer"], gen["prompt_tokens"], gen["new_tokens"], mode)
        s[key + "/time_s"] = r["median_s"]
        s[key + "/tokens_per_s"] = r["tokens_per_s"]
        for extra in ("decode_time_ms_per_token", "prefill_time_s"):
            if extra in r:
                s["%s/%s" % (key, extra)] = r[extra]
    return s


def parse_grid(text):
    return [tuple(int(x) for x in item.split("x")) for item in text.split(",") if item.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out")
    ap.add_argument("--only", default="calib,kd,train,gen")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeats", "-k", type=int, default=3)
    ap.add_argument("--blas", choices=["auto", "openblas", "system"], default="auto")
    ap.add_argument("--openblas-dir", default=os.path.join(HERE, ".openblas"))
    ap.add_argument("--torch-dir", default=os.path.join(HERE, ".pytorch"), help="torch unpacked by setup_torch.sh")
    ap.add_argument("--openblas-coretype", default="auto", help="auto (SkylakeX on AVX-512, Haswell on AVX2), none, or a name")
    ap.add_argument("--kd-grid", default=DEFAULT_GRID)
    ap.add_argument("--kd-chunk", type=int, default=1024)
    ap.add_argument("--kd-variants", default="naive,chunked")
    ap.add_argument("--kd-no-check", action="store_true")
    ap.add_argument("--train-layers", type=int, default=12)
    ap.add_argument("--train-batch", type=int, default=4)
    ap.add_argument("--train-seq", type=int, default=128)
    ap.add_argument("--train-objectives", default="naive,chunked")
    ap.add_argument("--gen-layers", type=int, default=12)
    ap.add_argument("--gen-prompt", type=int, default=32)
    ap.add_argument("--gen-new", type=int, default=64)
    ap.add_argument("--gen-modes", default="kv_cache,no_cache")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="smoke test: tiny shapes, k = 1")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker is not None:
        worker_main(args.worker)
        return
    if args.warmup < 1:
        ap.error("--warmup must be >= 1 (the cold first call is the one whose RSS peak is measured)")

    started = time.perf_counter()
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    cpu = cpu_info()
    lib = openblas_lib_dir(args.openblas_dir)
    mode = args.blas if args.blas != "auto" else ("openblas" if lib else "system")
    if mode == "openblas" and not lib:
        sys.exit("no OpenBLAS under %s: run setup_openblas.sh, or pass --blas system" % args.openblas_dir)
    coretype = args.openblas_coretype
    if coretype == "auto":
        coretype = os.environ.get("OPENBLAS_CORETYPE") or (
            "SkylakeX" if "avx512f" in cpu["simd_flags"] else "Haswell" if "avx2" in cpu["simd_flags"] else None)
    elif coretype == "none":
        coretype = None
    blas = {"mode": mode, "dir": lib, "coretype": coretype if mode == "openblas" else None,
            "torch": local_torch_paths(args.torch_dir)}

    model_cfg = {"n_embd": 768, "n_head": 12, "vocab": 50257, "n_ctx": 1024}
    grid = parse_grid(args.kd_grid)
    gemms = [["mm_1024_cube", 1024, 1024, 1024], ["gpt2_mlp_fc_512tok", 512, 768, 3072],
             ["kd_chunk_lm_head_1024x1024x32000", 1024, 1024, 32000], ["gpt2_decode_lm_head_1tok", 1, 768, 50257]]
    if args.quick:
        grid, gemms = [(512, 256, 4000)], [["mm_256_cube", 256, 256, 256]]
        args.repeats = 1
        model_cfg = {"n_embd": 256, "n_head": 4, "vocab": 8000, "n_ctx": 1024}
        args.train_layers, args.gen_layers, args.gen_new = 2, 2, 8

    result = {
        "schema": "distill-torch-ref-bench/1",
        "date_utc": datetime.datetime.utcnow().replace(microsecond=0).isoformat() + "Z",
        "host": {"cpu": cpu, "platform": platform.platform(), "python": platform.python_version(),
                 "mem_available_mb_at_start": mem_available_mb(), "loadavg_at_start": loadavg()},
        "config": {"threads": args.threads, "warmup": args.warmup, "repeats_k": args.repeats,
                   "statistic": "median of k timed calls after warm-up", "blas_mode": mode,
                   "openblas_coretype": blas["coretype"], "torch_from": "setup_torch.sh (.pytorch)" if blas["torch"] else "system",
                   "sections": sections, "quick": args.quick,
                   "seed": args.seed, "argv": sys.argv[1:]},
    }

    def note(res):
        env = res.pop("env", None) if isinstance(res, dict) else None
        if env and "torch" not in result:
            result["torch"] = env
            if env["blas"]["kind"].startswith("netlib"):
                result.setdefault("warnings", []).append(
                    "torch runs on netlib reference BLAS (single-threaded, a few GFLOP/s): not comparable with "
                    "TorchSharp's MKL; run setup_openblas.sh")
        return res

    if "calib" in sections:
        log("calibration (%s BLAS)" % mode)
        result["calibration"] = note(run_worker(args, {"kind": "calib", "gemm_shapes": gemms, "warmup": 1,
                                                       "repeats": max(5, args.repeats)}, blas, 600))
        for gm in result["calibration"].get("gemm", []):
            log("  %-34s %.1f GFLOP/s" % (gm["name"], gm["gflops"]))

    if "kd" in sections:
        variants = [v for v in args.kd_variants.split(",") if v]
        kd = {"chunk": args.kd_chunk, "ignore_fraction": 0.1, "temperature": 1.0,
              "loss": "sum over non-ignored tokens of KL(p_t || p_s)", "results": []}
        for (n, h, v) in grid:
            for var in variants:
                job = {"kind": "kd", "N": n, "H": h, "V": v, "variant": var, "chunk": args.kd_chunk,
                       "warmup": args.warmup, "repeats": args.repeats, "seed": args.seed, "check": not args.kd_no_check}
                r = note(run_worker(args, job, blas, 1800))
                kd["results"].append(r)
                if "median_s" in r:
                    log("kd %-7s N=%d H=%d V=%d: %.3f s  peak +%.0f MB" % (var, n, h, v, r["median_s"], r["peak_rss_increase_mb"]))
                else:
                    log("kd %s failed: %s" % (var, r.get("error")))
        kd["all_checks_pass"] = all(r["check_vs_naive"]["pass"] for r in kd["results"] if "check_vs_naive" in r)
        result["kd_loss"] = kd

    if "train" in sections:
        result["gpt2_train"] = []
        for objective in [o for o in args.train_objectives.split(",") if o]:
            job = {"kind": "train", "model": model_cfg, "n_layer": args.train_layers, "batch": args.train_batch,
                   "seq": args.train_seq, "objective": objective, "chunk": args.kd_chunk, "warmup": args.warmup,
                   "repeats": args.repeats, "seed": args.seed}
            r = note(run_worker(args, job, blas, 1800))
            result["gpt2_train"].append(r)
            if "median_s" in r:
                log("train %s: %.3f s/step, first step peak +%.0f MB" % (objective, r["median_s"], r["first_step_peak_rss_increase_mb"]))
            else:
                log("train %s failed: %s" % (objective, r.get("error")))

    if "gen" in sections:
        job = {"kind": "gen", "model": model_cfg, "n_layer": args.gen_layers, "prompt": args.gen_prompt,
               "new": args.gen_new, "warmup": args.warmup, "repeats": args.repeats, "seed": args.seed,
               "modes": [m for m in args.gen_modes.split(",") if m]}
        result["gpt2_generate"] = note(run_worker(args, job, blas, 1800))

    if "calib" in sections:
        log("calibration again at the end (drift check)")
        end = note(run_worker(args, {"kind": "calib", "gemm_shapes": [gemms[0]] + gemms[2:3], "warmup": 1,
                                     "repeats": 5, "extras": False}, blas, 600))
        result["calibration_end"] = end

    result["host"]["loadavg_at_end"] = loadavg()
    result["summary"] = build_summary(result)
    result["total_wall_s"] = time.perf_counter() - started
    text = json.dumps(result, indent=2)
    if args.out:
        tmp = args.out + ".tmp"
        with open(tmp, "w") as f:
            f.write(text + "\n")
        os.replace(tmp, args.out)
    sys.stdout.write(text + "\n")


if __name__ == "__main__":
    main()
