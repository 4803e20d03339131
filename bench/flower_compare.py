#!/usr/bin/env python3
"""Side-by-side benchmark: Flower's (flwr) aggregation functions vs Starling's CLI.

For every workload (clients x model) this script

1. generates seeded client updates (numpy ``default_rng(seed)``) and writes each
   client's update as ``bench/out/<workload>/client_NNN.safetensors`` (cached:
   reused on the next run when the manifest matches workload + seed);
2. times Flower's aggregation function on in-memory numpy arrays, best of K;
3. runs ``starling aggregate --json --repeat K`` on the same files;
4. loads Starling's output and compares it with Flower's result per tensor.

It prints a Markdown table and writes ``flower_compare.md`` and
``flower_compare.json`` under the output directory.  Run it through
``bench/flower_compare.sh``, which prepares the virtualenv and builds Starling.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import safetensors
import safetensors.numpy as stnp

import flwr
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters
from flwr.server.strategy import aggregate as flagg

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
GENERATOR_VERSION = 1  # bump when the input generator changes (invalidates caches)
STD = 0.01  # honest update ~ N(0, STD^2) per coordinate, i.e. standard deviation 0.01
MISMATCH_REL = 1e-5  # max |diff| / max |value| above this is flagged as a disagreement

# --------------------------------------------------------------------------- models

# The CNN of the FedAvg paper (McMahan et al. 2017) for MNIST: 1,663,370 parameters.
MNIST_CNN: list[tuple[str, tuple[int, ...]]] = [
    ("conv1.weight", (32, 1, 5, 5)),
    ("conv1.bias", (32,)),
    ("conv2.weight", (64, 32, 5, 5)),
    ("conv2.bias", (64,)),
    ("fc1.weight", (512, 3136)),
    ("fc1.bias", (512,)),
    ("fc2.weight", (10, 512)),
    ("fc2.bias", (10,)),
]

# 25,000,000 parameters exactly: four 2500-wide layers, the last weight trimmed to
# 2496 columns so that 3*2500*2500 + 2500*2496 + 4*2500 = 25,000,000.
LARGE_25M: list[tuple[str, tuple[int, ...]]] = [
    ("layer0.weight", (2500, 2500)),
    ("layer0.bias", (2500,)),
    ("layer1.weight", (2500, 2500)),
    ("layer1.bias", (2500,)),
    ("layer2.weight", (2500, 2500)),
    ("layer2.bias", (2500,)),
    ("layer3.weight", (2500, 2496)),
    ("layer3.bias", (2500,)),
]


def n_params(spec: list[tuple[str, tuple[int, ...]]]) -> int:
    return sum(int(np.prod(shape)) for _, shape in spec)


assert n_params(MNIST_CNN) == 1_663_370, n_params(MNIST_CNN)
assert n_params(LARGE_25M) == 25_000_000, n_params(LARGE_25M)


@dataclass
class Workload:
    key: str
    name: str
    clients: int
    spec: list[tuple[str, tuple[int, ...]]]
    krum_f: int  # Krum / Multi-Krum byzantine bound
    bulyan_f: int  # Bulyan byzantine bound (n >= 4f + 3)

    @property
    def params(self) -> int:
        return n_params(self.spec)

    @property
    def input_bytes(self) -> int:
        return self.clients * self.params * 4

    @property
    def select(self) -> int:  # Multi-Krum M
        return self.clients // 2


WORKLOADS: dict[str, Workload] = {
    "a": Workload("a", "a: 10 x MNIST-CNN", 10, MNIST_CNN, krum_f=2, bulyan_f=1),
    "b": Workload("b", "b: 100 x MNIST-CNN", 100, MNIST_CNN, krum_f=10, bulyan_f=10),
    "c": Workload("c", "c: 10 x 25M", 10, LARGE_25M, krum_f=2, bulyan_f=1),
}

ALL_RULES = ["fedavg", "fedavg-inplace", "median", "trimmed-mean", "krum", "multi-krum", "bulyan"]
TRIM_BETA = 0.2

# --------------------------------------------------------------------------- inputs


def workload_dir(out: Path, wl: Workload) -> Path:
    return out / wl.key


def manifest_for(wl: Workload, seed: int) -> dict[str, Any]:
    return {
        "generator_version": GENERATOR_VERSION,
        "workload": wl.key,
        "seed": seed,
        "clients": wl.clients,
        "std": STD,
        "tensors": [[name, list(shape)] for name, shape in wl.spec],
    }


def ensure_inputs(out: Path, wl: Workload, seed: int, mode: str) -> tuple[list[Path], list[int]]:
    """Return (client files, sample counts), generating them if needed.

    mode: "cache" (reuse if the manifest matches workload+seed, else regenerate),
    "keep" (reuse whatever is there if a manifest exists), "regen" (always regenerate).
    """
    d = workload_dir(out, wl)
    mpath = d / "manifest.json"
    files = [d / f"client_{i:03d}.safetensors" for i in range(wl.clients)]
    want = manifest_for(wl, seed)
    if mode != "regen" and mpath.exists() and all(f.exists() for f in files):
        have = json.loads(mpath.read_text())
        stored = {k: v for k, v in have.items() if k != "num_examples"}
        if mode == "keep" or stored == want:
            if mode == "keep" and stored != want:
                print(f"  [{wl.key}] --keep-inputs: reusing inputs generated with {stored.get('seed')=}")
            print(f"  [{wl.key}] reusing cached inputs in {d}")
            return files, [int(x) for x in have["num_examples"]]

    print(f"  [{wl.key}] generating {wl.clients} clients x {wl.params:,} params (seed {seed}) -> {d}")
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    num_examples = [int(x) for x in rng.integers(100, 1000, size=wl.clients, endpoint=True)]
    t0 = time.perf_counter()
    for f in files:
        tensors = {}
        for name, shape in wl.spec:
            arr = rng.standard_normal(shape, dtype=np.float32)
            arr *= np.float32(STD)
            tensors[name] = arr
        stnp.save_file(tensors, str(f))
    print(f"  [{wl.key}] generated in {time.perf_counter() - t0:.1f} s")
    mpath.write_text(json.dumps({**want, "num_examples": num_examples}, indent=1))
    return files, num_examples


def load_client(path: Path, spec: list[tuple[str, tuple[int, ...]]]) -> list[np.ndarray]:
    d = stnp.load_file(str(path))
    out = []
    for name, shape in spec:
        a = d[name]
        assert a.dtype == np.float32 and a.shape == shape, (path, name, a.dtype, a.shape)
        out.append(a)
    return out


# --------------------------------------------------------------------------- timing


@dataclass
class Timing:
    best: float
    median: float
    times: list[float]
    result: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


def time_flower(call: Callable[[], Any], reps: int, budget_s: float) -> Timing:
    """Best of `reps` calls of `call`; stops early once `budget_s` is spent (>= 1 call).

    Only the call itself is inside perf_counter; the garbage collector is off during
    the call (as timeit does).
    """
    times: list[float] = []
    result = None
    for _ in range(reps):
        result = None
        gc.collect()
        gc.disable()
        try:
            t0 = time.perf_counter()
            result = call()
            t1 = time.perf_counter()
        finally:
            gc.enable()
        times.append(t1 - t0)
        if sum(times) >= budget_s:
            break
    return Timing(min(times), statistics.median(times), times, result)


# --------------------------------------------------------------------------- Flower side


class _Spy:
    """Records the identities of the (ndarrays, n) tuples a Flower helper receives.

    Used to recover *which* clients Flower's Multi-Krum averaged / Bulyan selected,
    without running the (slow) selection a second time.  It wraps one module-level
    function of flwr.server.strategy.aggregate; cost: one list of ids per call.
    """

    def __init__(self, name: str):
        self.name = name
        self.orig = getattr(flagg, name)
        self.seen: list[list[int]] = []

    def __enter__(self) -> "_Spy":
        orig = self.orig

        def wrapper(results, *a, **kw):  # type: ignore[no-untyped-def]
            self.seen.append([id(r) for r in results])
            return orig(results, *a, **kw)

        setattr(flagg, self.name, wrapper)
        return self

    def __exit__(self, *exc: Any) -> None:
        setattr(flagg, self.name, self.orig)


def run_flower(rule: str, wl: Workload, results: list[tuple[list[np.ndarray], int]],
               fit_pairs: list[tuple[None, FitRes]] | None, reps: int, budget_s: float) -> Timing:
    n = wl.clients
    ids = {id(r): i for i, r in enumerate(results)}
    if rule == "fedavg":
        return time_flower(lambda: flagg.aggregate(results), reps, budget_s)
    if rule == "fedavg-inplace":
        assert fit_pairs is not None
        return time_flower(lambda: flagg.aggregate_inplace(fit_pairs), reps, budget_s)
    if rule == "median":
        return time_flower(lambda: flagg.aggregate_median(results), reps, budget_s)
    if rule == "trimmed-mean":
        return time_flower(lambda: flagg.aggregate_trimmed_avg(results, TRIM_BETA), reps, budget_s)
    if rule == "krum":
        t = time_flower(lambda: flagg.aggregate_krum(results, wl.krum_f, 0), reps, budget_s)
        # Krum returns the very list object of the chosen client.
        chosen = [i for i, (w, _) in enumerate(results) if w is t.result]
        t.extra["selected"] = chosen
        return t
    if rule == "multi-krum":
        with _Spy("aggregate") as spy:
            t = time_flower(lambda: flagg.aggregate_krum(results, wl.krum_f, wl.select), reps, budget_s)
        t.extra["selected"] = sorted(ids[x] for x in spy.seen[-1])
        return t
    if rule == "bulyan":
        # aggregate_bulyan pops from the list it is given: hand it a fresh shallow copy
        # (built outside the timed region).
        copies: list[list[tuple[list[np.ndarray], int]]] = []

        def call() -> Any:
            return flagg.aggregate_bulyan(copies.pop(), wl.bulyan_f, flagg.aggregate_krum, to_keep=0)

        times: list[float] = []
        result = None
        with _Spy("aggregate_median") as spy:
            for _ in range(reps):
                copies.append(list(results))
                tm = time_flower(call, 1, 0.0)
                times.append(tm.best)
                result = tm.result
                if sum(times) >= budget_s:
                    break
        t = Timing(min(times), statistics.median(times), times, result)
        t.extra["selected"] = sorted(ids[x] for x in spy.seen[-1])
        return t
    raise ValueError(rule)


# --------------------------------------------------------------------------- Starling side


def starling_cmd(binary: Path, rule: str, wl: Workload, files: list[Path], weights: list[int],
                 reps: int, output: Path) -> list[str]:
    srule = "fedavg" if rule == "fedavg-inplace" else rule
    cmd = [str(binary), "aggregate", "--rule", srule]
    # Weights go only to the rules whose Flower counterpart uses num_examples:
    # FedAvg and Multi-Krum (Flower averages the selected clients weighted by
    # num_examples).  Krum returns one client's vector; median, trimmed mean and
    # Bulyan are unweighted in Flower.
    if srule in ("fedavg", "multi-krum"):
        cmd += ["--weights", ",".join(str(w) for w in weights)]
    if srule == "trimmed-mean":
        cmd += ["--beta", str(TRIM_BETA)]
    if srule in ("krum", "multi-krum"):
        cmd += ["--byzantine", str(wl.krum_f)]
    if srule == "multi-krum":
        cmd += ["--select", str(wl.select)]
    if srule == "bulyan":
        cmd += ["--byzantine", str(wl.bulyan_f)]
    cmd += ["--repeat", str(reps), "--json", "--output", str(output)]
    cmd += [str(f) for f in files]
    return cmd


def run_starling(cmd: list[str]) -> dict[str, Any]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"starling exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip().startswith("{")]
    if not lines:
        raise RuntimeError(f"starling printed no JSON object; stdout={proc.stdout[-500:]!r}")
    obj = json.loads(lines[-1])
    obj["process_wall_s"] = wall
    return obj


# --------------------------------------------------------------------------- compare


def compare(flower: list[np.ndarray], starling_out: Path, spec: list[tuple[str, tuple[int, ...]]]) -> dict[str, Any]:
    got = stnp.load_file(str(starling_out))
    per: dict[str, Any] = {}
    worst_rel = 0.0
    worst_abs = 0.0
    n_differ = 0
    problems: list[str] = []
    for (name, shape), f in zip(spec, flower, strict=True):
        if name not in got:
            problems.append(f"missing tensor {name}")
            continue
        s = got[name]
        if tuple(s.shape) != tuple(np.shape(f)):
            problems.append(f"{name}: shape {tuple(s.shape)} != {tuple(np.shape(f))}")
            continue
        f64 = np.asarray(f, dtype=np.float64)
        absdiff = np.abs(s.astype(np.float64) - f64)
        d = float(np.max(absdiff)) if f64.size else 0.0
        scale = float(np.max(np.abs(f64))) if f64.size else 0.0
        rel = d / scale if scale > 0 else (0.0 if d == 0 else float("inf"))
        differ = np.flatnonzero(absdiff.ravel() > MISMATCH_REL * scale)
        per[name] = {"max_abs_diff": d, "max_abs_value": scale, "rel": rel,
                     "coords_differ": int(differ.size), "differ_examples_all": differ[:1000].tolist(),
                     "starling_dtype": str(s.dtype), "flower_dtype": str(np.asarray(f).dtype)}
        worst_rel = max(worst_rel, rel)
        worst_abs = max(worst_abs, d)
        n_differ += int(differ.size)
    extra = sorted(set(got) - {n for n, _ in spec})
    if extra:
        problems.append(f"unexpected tensors {extra}")
    return {"max_rel_diff": worst_rel, "max_abs_diff": worst_abs, "coords_differ": n_differ,
            "per_tensor": per, "problems": problems}


def bulyan_ties(cmp: dict[str, Any], spec: list[tuple[str, tuple[int, ...]]],
                client_arrays: list[list[np.ndarray]], selected: list[int], f: int,
                limit: int = 1000) -> dict[str, Any]:
    """Explain Bulyan coordinates where Flower and Starling differ.

    Bulyan averages, per coordinate, the beta = theta - 2f selected values
    closest to their median. When the beta-th and (beta+1)-th smallest
    |value - median| are *equal in float32* (both sides compute in f32), either
    choice is a correct Bulyan; the two implementations just break the tie
    differently (Flower: np.argpartition's order). Such coordinates are counted as
    ties; any other differing coordinate stays unexplained.
    """
    beta = len(selected) - 2 * f
    ties = checked = 0
    unexplained: list[str] = []
    for t, (name, _) in enumerate(spec):
        for j in cmp["per_tensor"].get(name, {}).get("differ_examples_all", []):
            if checked >= limit:
                break
            checked += 1
            col = np.sort(np.array([client_arrays[i][t].ravel()[j] for i in selected], dtype=np.float32))
            med = np.median(col)  # float32, mean of the two middle values, as Flower
            dist = np.sort(np.abs(col - med))
            if beta < len(col) and dist[beta - 1] == dist[beta]:
                ties += 1
            else:
                unexplained.append(f"{name}[{j}]")
    return {"coords_differ": cmp["coords_differ"], "checked": checked, "f32_ties": ties,
            "unexplained_examples": unexplained[:20],
            "all_ties": checked == cmp["coords_differ"] and ties == checked and checked > 0}


# --------------------------------------------------------------------------- report


def fmt_s(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 1:
        return f"{x:.2f}"
    if x >= 0.01:
        return f"{x:.4f}"
    return f"{x:.2e}"


def fmt_gbs(x: float | None) -> str:
    return "-" if x is None else (f"{x:.2f}" if x < 100 else f"{x:.0f}")


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return {"cpu": cpu, "logical_cpus": os.cpu_count(), "usable_cpus": usable, "memory": mem,
            "platform": platform.platform(), "python": platform.python_version()}


def git_commit() -> str:
    try:
        rev = subprocess.run(["git", "-C", str(REPO_DIR), "rev-parse", "--short=12", "HEAD"],
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO_DIR), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def starling_version(binary: Path | None) -> str | None:
    if binary is None:
        return None
    try:
        p = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30)
        return p.stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        return None


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str]) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--starling", default=env("STARLING_BIN"),
                   help="path to the starling binary (env STARLING_BIN)")
    p.add_argument("--flower-only", action="store_true", default=env("BENCH_FLOWER_ONLY") == "1",
                   help="time Flower only, do not run Starling (env BENCH_FLOWER_ONLY=1)")
    p.add_argument("--out", default=env("BENCH_OUT", str(BENCH_DIR / "out")), help="output dir (env BENCH_OUT)")
    p.add_argument("--seed", type=int, default=int(env("BENCH_SEED", "42")), help="RNG seed (env BENCH_SEED)")
    p.add_argument("--workloads", default=env("BENCH_WORKLOADS"),
                   help="comma list from a,b,c (env BENCH_WORKLOADS; default a,b,c, or a with --quick)")
    p.add_argument("--rules", default=env("BENCH_RULES", ",".join(ALL_RULES)),
                   help=f"comma list from {','.join(ALL_RULES)} (env BENCH_RULES)")
    p.add_argument("--quick", action="store_true", default=env("BENCH_QUICK") == "1",
                   help="smoke run: workload a only, 2 repetitions (env BENCH_QUICK=1)")
    p.add_argument("--repeat", type=int, default=int(env("BENCH_REPEAT", "0")) or None,
                   help="K, repetitions per case, best of K (env BENCH_REPEAT; default 5, 2 with --quick)")
    p.add_argument("--flower-budget", type=float, default=float(env("BENCH_FLOWER_BUDGET", "60")),
                   help="stop repeating a Flower case once its repetitions add up to this many "
                        "seconds (at least one always runs; env BENCH_FLOWER_BUDGET, default 60)")
    p.add_argument("--flower-max-estimate", type=float, default=float(env("BENCH_FLOWER_MAX_ESTIMATE", "1800")),
                   help="skip a Flower Bulyan case whose estimate (from the Krum timing) exceeds this "
                        "many seconds (env BENCH_FLOWER_MAX_ESTIMATE, default 1800)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--keep-inputs", action="store_true", default=env("BENCH_KEEP_INPUTS") == "1",
                   help="reuse existing inputs in OUT/<workload>/ as they are, even if they were "
                        "generated with another seed (env BENCH_KEEP_INPUTS=1)")
    g.add_argument("--regen-inputs", action="store_true", default=env("BENCH_REGEN_INPUTS") == "1",
                   help="always regenerate the inputs (env BENCH_REGEN_INPUTS=1)")
    p.add_argument("--keep-outputs", action="store_true", default=env("BENCH_KEEP_OUTPUTS") == "1",
                   help="keep Starling's output safetensors (default: deleted after the comparison)")
    a = p.parse_args(argv)
    if a.workloads is None:
        a.workloads = "a" if a.quick else "a,b,c"
    if a.repeat is None:
        a.repeat = 2 if a.quick else 5
    a.workloads = [w.strip() for w in a.workloads.split(",") if w.strip()]
    a.rules = [r.strip() for r in a.rules.split(",") if r.strip()]
    for w in a.workloads:
        if w not in WORKLOADS:
            p.error(f"unknown workload {w!r}")
    for r in a.rules:
        if r not in ALL_RULES:
            p.error(f"unknown rule {r!r}")
    if not a.flower_only and not a.starling:
        p.error("--starling PATH (or STARLING_BIN) is required unless --flower-only")
    return a


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    binary = None if args.flower_only else Path(args.starling)
    input_mode = "keep" if args.keep_inputs else ("regen" if args.regen_inputs else "cache")

    info = {
        "machine": machine_info(),
        "versions": {"flwr": flwr.__version__, "numpy": np.__version__, "safetensors": safetensors.__version__,
                     "python": platform.python_version(), "starling_commit": git_commit(),
                     "starling_version": starling_version(binary), "starling_binary": str(binary) if binary else None},
        "settings": {"seed": args.seed, "repeat": args.repeat, "flower_budget_s": args.flower_budget,
                     "trimmed_mean_beta": TRIM_BETA, "std": STD, "quick": args.quick, "mismatch_rel": MISMATCH_REL},
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    m, v = info["machine"], info["versions"]
    print(f"machine : {m['cpu']}, {m['logical_cpus']} logical CPUs ({m['usable_cpus']} usable), {m['memory']}")
    print(f"versions: flwr {v['flwr']}, numpy {v['numpy']}, safetensors {v['safetensors']}, "
          f"python {v['python']}, starling {v['starling_commit']}")

    rows: list[dict[str, Any]] = []
    for wk in args.workloads:
        wl = WORKLOADS[wk]
        print(f"\n== workload {wl.name}: {wl.clients} clients x {wl.params:,} parameters "
              f"= {wl.input_bytes / 1e6:,.0f} MB of f32 inputs")
        files, weights = ensure_inputs(out, wl, args.seed, input_mode)
        t0 = time.perf_counter()
        client_arrays = [load_client(f, wl.spec) for f in files]
        results = [(arrs, w) for arrs, w in zip(client_arrays, weights, strict=True)]
        print(f"  loaded into memory in {time.perf_counter() - t0:.1f} s; sample counts sum {sum(weights)}")
        fit_pairs = None
        if "fedavg-inplace" in args.rules:
            status = Status(code=Code.OK, message="")
            # aggregate_inplace never touches the ClientProxy, so None stands in for it.
            fit_pairs = [(None, FitRes(status=status, parameters=ndarrays_to_parameters(arrs),
                                       num_examples=w, metrics={})) for arrs, w in results]

        krum_time: float | None = None
        starling_cache: dict[str, dict[str, Any]] = {}
        for rule in args.rules:
            row: dict[str, Any] = {"workload": wl.key, "workload_name": wl.name, "rule": rule,
                                   "clients": wl.clients, "parameters": wl.params, "input_bytes": wl.input_bytes,
                                   "notes": []}
            if rule in ("krum", "multi-krum"):
                row["byzantine"] = wl.krum_f
                if wl.clients <= 2 * wl.krum_f + 2:
                    row["notes"].append(f"n={wl.clients} <= 2f+2: outside Krum's assumption")
            if rule == "multi-krum":
                row["select"] = wl.select
            if rule == "bulyan":
                row["byzantine"] = wl.bulyan_f
            if rule == "trimmed-mean":
                row["beta"] = TRIM_BETA
            label = f"  {rule:<15}"

            # ---- Flower
            flower: Timing | None = None
            skip_reason = None
            if rule == "bulyan" and krum_time is not None:
                n, f = wl.clients, wl.bulyan_f
                theta = n - 2 * f
                est = krum_time * sum(k * k for k in range(n - theta + 1, n + 1)) / (n * n)
                row["flower_estimate_s"] = est
                if est > args.flower_max_estimate:
                    skip_reason = f"Flower skipped: estimated {est:.0f} s (> --flower-max-estimate)"
            if skip_reason:
                row["notes"].append(skip_reason)
                print(f"{label} flower: {skip_reason}")
            else:
                try:
                    flower = run_flower(rule, wl, results, fit_pairs, args.repeat, args.flower_budget)
                except Exception as e:  # noqa: BLE001 - report and continue
                    row["notes"].append(f"Flower failed: {type(e).__name__}: {e}")
                    print(f"{label} flower FAILED: {e}")
            if flower is not None:
                if rule == "krum":
                    krum_time = flower.best
                row["flower_s"] = flower.best
                row["flower_s_median"] = flower.median
                row["flower_times"] = flower.times
                row["flower_reps"] = len(flower.times)
                row["flower_gb_s"] = wl.input_bytes / flower.best / 1e9
                if "selected" in flower.extra:
                    row["flower_selected"] = flower.extra["selected"]
                if len(flower.times) < args.repeat:
                    row["notes"].append(f"Flower best of {len(flower.times)} (budget {args.flower_budget:.0f} s)")
                if rule == "fedavg-inplace":
                    row["notes"].append("Flower time includes deserialising Parameters")
                print(f"{label} flower  {fmt_s(flower.best):>9} s  ({len(flower.times)} reps, "
                      f"{row['flower_gb_s']:.2f} GB/s)" + (f" selected {flower.extra['selected']}"
                                                          if 'selected' in flower.extra else ""))

            # ---- Starling
            st: dict[str, Any] | None = None
            outfile = out / "results" / wl.key / f"starling_{rule}.safetensors"
            if binary is not None:
                srule = "fedavg" if rule == "fedavg-inplace" else rule
                if srule in starling_cache and rule == "fedavg-inplace":
                    st = starling_cache[srule]
                    row["notes"].append("Starling: same run as fedavg")
                    outfile = out / "results" / wl.key / "starling_fedavg.safetensors"
                else:
                    outfile.parent.mkdir(parents=True, exist_ok=True)
                    cmd = starling_cmd(binary, rule, wl, files, weights, args.repeat, outfile)
                    row["starling_cmd"] = " ".join(cmd[:cmd.index("--output") + 2]) + f" <{len(files)} files>"
                    try:
                        st = run_starling(cmd)
                        starling_cache[srule] = st
                    except Exception as e:  # noqa: BLE001
                        row["notes"].append(f"Starling failed: {e}")
                        print(f"{label} starling FAILED: {e}")
            if st is not None:
                row["starling"] = st
                row["starling_s"] = float(st["seconds"])
                row["starling_s_median"] = float(st.get("seconds_median", st["seconds"]))
                row["starling_gb_s"] = wl.input_bytes / row["starling_s"] / 1e9
                if st.get("selected") is not None:
                    row["starling_selected"] = sorted(int(i) for i in st["selected"])
                for key, want in (("clients", wl.clients), ("parameters", wl.params), ("input_bytes", wl.input_bytes)):
                    if key in st and int(st[key]) != want:
                        row["notes"].append(f"Starling reports {key}={st[key]} (expected {want})")
                print(f"{label} starling{fmt_s(row['starling_s']):>9} s  ({row['starling_gb_s']:.2f} GB/s, "
                      f"process wall {st['process_wall_s']:.2f} s)"
                      + (f" selected {row['starling_selected']}" if 'starling_selected' in row else ""))

            # ---- ratio and correctness
            if flower is not None and st is not None:
                row["ratio"] = row["flower_s"] / row["starling_s"] if row["starling_s"] > 0 else None
                try:
                    cmp = compare(flower.result, outfile, wl.spec)
                except Exception as e:  # noqa: BLE001
                    cmp = {"max_rel_diff": None, "problems": [f"could not compare: {e}"]}
                row["compare"] = cmp
                row["max_rel_diff"] = cmp["max_rel_diff"]
                mismatch = bool(cmp["problems"]) or cmp["max_rel_diff"] is None or cmp["max_rel_diff"] > MISMATCH_REL
                if cmp["problems"]:
                    row["notes"].extend(cmp["problems"])
                if "flower_selected" in row and "starling_selected" in row:
                    same = row["flower_selected"] == row["starling_selected"]
                    row["selection_agrees"] = same
                    if not same:
                        mismatch = True
                        row["notes"].append(f"SELECTION DIFFERS: Flower {row['flower_selected']} "
                                            f"vs Starling {row['starling_selected']}")
                elif "flower_selected" in row and rule in ("krum", "multi-krum"):
                    row["notes"].append("Starling reported no selection")
                if (mismatch and rule == "bulyan" and not cmp["problems"] and row.get("selection_agrees")
                        and cmp.get("coords_differ")):
                    ties = bulyan_ties(cmp, wl.spec, client_arrays, row["flower_selected"], wl.bulyan_f)
                    row["bulyan_ties"] = ties
                    if ties["all_ties"]:
                        row["explained"] = (f"{ties['coords_differ']} of {wl.params:,} coords differ, all "
                                            "exact f32 ties at the beta-th distance to the median "
                                            "(tie broken differently; both valid)")
                    else:
                        row["notes"].append(f"{ties['coords_differ']} coords differ, {ties['f32_ties']} of "
                                            f"{ties['checked']} checked are f32 ties")
                for per in cmp.get("per_tensor", {}).values():
                    per["differ_examples"] = per.pop("differ_examples_all", [])[:20]
                row["mismatch"] = mismatch
                print(f"{label} ratio {row['ratio']:.1f}x, max rel diff {cmp['max_rel_diff']}"
                      + (f"   <<< DIFFERS: {row['explained']}" if mismatch and row.get("explained")
                         else ("   <<< MISMATCH" if mismatch else "")))
            if outfile.exists() and not args.keep_outputs and rule != "fedavg":
                outfile.unlink()
            rows.append(row)
            gc.collect()
        fedavg_out = out / "results" / wl.key / "starling_fedavg.safetensors"
        if fedavg_out.exists() and not args.keep_outputs:
            fedavg_out.unlink()
        del client_arrays, results, fit_pairs
        gc.collect()

    md = render_markdown(info, rows)
    print("\n" + md)
    (out / "flower_compare.md").write_text(md)
    (out / "flower_compare.json").write_text(json.dumps({**info, "rows": rows}, indent=1, default=str))
    print(f"wrote {out / 'flower_compare.md'} and {out / 'flower_compare.json'}")
    return 1 if any(r.get("mismatch") and not r.get("explained") for r in rows) else 0


def render_markdown(info: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    m, v, s = info["machine"], info["versions"], info["settings"]
    lines = [
        "# Flower vs Starling aggregation",
        "",
        f"- machine: {m['cpu']}, {m['logical_cpus']} logical CPUs ({m['usable_cpus']} usable), {m['memory']}, {m['platform']}",
        f"- versions: flwr {v['flwr']}, numpy {v['numpy']}, safetensors {v['safetensors']}, python {v['python']}; "
        f"starling commit {v['starling_commit']}" + (f" ({v['starling_version']})" if v.get("starling_version") else ""),
        f"- seed {s['seed']}, best of K={s['repeat']} (Flower stops repeating after {s['flower_budget_s']:.0f} s), "
        f"updates ~ N(0, {s['std']}^2) f32, trimmed-mean beta {s['trimmed_mean_beta']}",
        f"- GB/s = clients x parameters x 4 B / seconds / 1e9; ratio = Flower s / Starling s; "
        f"max rel diff = max over tensors of max|Starling - Flower| / max|Flower|, flagged above {s['mismatch_rel']:g}",
        f"- run started {info['started']}",
        "",
        "| workload | rule | Flower s | Flower GB/s | Starling s | Starling GB/s | ratio | max rel diff | notes |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        rel = r.get("max_rel_diff")
        if "compare" not in r:
            rel_s = "-"
        elif rel is None:
            rel_s = "**ERROR**"
        else:
            rel_s = f"{rel:.1e}" if rel > 0 else "0"
        if r.get("mismatch") and r.get("explained"):
            rel_s = f"**DIFFERS (ties)** {rel_s}"
        elif r.get("mismatch"):
            rel_s = f"**MISMATCH** {rel_s}"
        params = []
        if "byzantine" in r:
            params.append(f"f={r['byzantine']}")
        if "select" in r:
            params.append(f"M={r['select']}")
        if "beta" in r:
            params.append(f"beta={r['beta']}")
        rule = r["rule"] + (f" ({', '.join(params)})" if params else "")
        notes = list(r["notes"])
        if r.get("explained"):
            notes.insert(0, r["explained"])
        elif r.get("mismatch") and r.get("compare", {}).get("coords_differ"):
            notes.insert(0, f"{r['compare']['coords_differ']:,} of {r['parameters']:,} coords differ")
        if r.get("selection_agrees"):
            notes.append(f"same selection {r['flower_selected'] if len(r['flower_selected']) <= 12 else ''}".rstrip())
        ratio = r.get("ratio")
        lines.append(
            f"| {r['workload_name']} | {rule} | {fmt_s(r.get('flower_s'))} | {fmt_gbs(r.get('flower_gb_s'))} | "
            f"{fmt_s(r.get('starling_s'))} | {fmt_gbs(r.get('starling_gb_s'))} | "
            f"{'-' if ratio is None else f'{ratio:.1f}x'} | {rel_s} | {'; '.join(notes)} |")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
