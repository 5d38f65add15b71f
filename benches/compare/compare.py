#!/usr/bin/env python3
"""Runs typednet's criterion benches and their PyTorch twins interleaved, case by case, and
prints one table. Started by benches/compare/run.sh, which builds the benches and finds PyTorch;
the Python standard library is all this script needs.

For every selected case, in every round: the typednet bench binary is run for that case alone
(`--bench --exact NAME --output-format bencher`, criterion does the timing), then the PyTorch
twin is timed by a long-running `pytorch_benches.py --serve` process, with the same warm-up,
measurement time, sample count and thread count; the next round runs the two sides in the other
order. A case's figure is criterion's median (ns/iter); over several rounds, the best round,
with the median of the rounds beside it. Ratios and rates are of the best rounds.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BENCHER_LINE = re.compile(r"^test (\S+) \.\.\. bench:\s+(\d+) ns/iter \(\+/- (\d+)\)")
GEMM_PREFIX = "gemm/"


def parse_bencher(text):
    """{name: ns per iteration} from criterion's `--output-format bencher` lines."""
    found = {}
    for line in text.splitlines():
        match = BENCHER_LINE.match(line.strip())
        if match:
            found[match.group(1)] = float(match.group(2))
    return found


def list_rust_cases(binaries):
    """[(name, binary)] in the order each binary declares its benches."""
    cases = []
    for binary in binaries:
        out = subprocess.run([binary, "--bench", "--list"], capture_output=True, text=True,
                             check=True).stdout
        for line in out.splitlines():
            if line.endswith(": benchmark"):
                cases.append((line[: -len(": benchmark")], binary))
    return cases


class PyTorchServer:
    """`pytorch_benches.py --serve`, answering one case at a time."""

    def __init__(self, python, settings, threads):
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        self.proc = subprocess.Popen(
            [python, os.path.join(HERE, "pytorch_benches.py"), "--serve", "--threads", str(threads)]
            + settings,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.banner = self.proc.stdout.readline().strip()
        if not self.banner.startswith("ready"):
            raise SystemExit(f"pytorch_benches.py did not start: {self.banner!r}")

    def run(self, name):
        self.proc.stdin.write(name + "\n")
        self.proc.stdin.flush()
        return parse_bencher(self.proc.stdout.readline()).get(name)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def run_rust(binary, name, settings, threads, criterion_home):
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads), CRITERION_HOME=criterion_home)
    proc = subprocess.run(
        [binary, "--bench", "--exact", name, "--output-format", "bencher"] + settings,
        capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        return None
    return parse_bencher(proc.stdout).get(name)


def load_average():
    """The 1-minute load average, or None where /proc is missing."""
    try:
        with open("/proc/loadavg", encoding="ascii") as f:
            return float(f.read().split()[0])
    except OSError:
        return None


def fmt_ms(ns):
    if ns is None:
        return "—"
    ms = ns / 1e6
    return f"{ms:.3f}" if ms < 10 else f"{ms:.1f}" if ms < 1000 else f"{ms:.0f}"


def gflops(flops, ns):
    return flops / ns if flops and ns else None  # FLOP per ns = GFLOP/s


def main():
    parser = argparse.ArgumentParser(description="typednet vs PyTorch, side by side")
    parser.add_argument("filters", nargs="*",
                        help="a bench target (conv, training) or a part of a case name; "
                             "no filter: every case")
    parser.add_argument("--bench-binary", action="append", default=[], metavar="NAME=PATH",
                        help="a criterion bench binary (run.sh passes every bench target)")
    parser.add_argument("--python", default="/tmp/ref/bin/python", help="a Python with torch")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="RAYON_NUM_THREADS and torch.set_num_threads (default: all cores)")
    parser.add_argument("--warm-up-time", type=float, default=1.0)
    parser.add_argument("--measurement-time", type=float, default=3.0)
    parser.add_argument("--sample-size", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", default=None, metavar="PATH",
                        help="also write every round's figures (ns/iter) to PATH")
    parser.add_argument("--criterion-home", default=None,
                        help="where criterion keeps its data (default: next to the binaries)")
    args = parser.parse_args()

    binaries = dict(b.split("=", 1) for b in args.bench_binary)
    if not binaries:
        raise SystemExit("no --bench-binary given; run benches/compare/run.sh")
    rust_cases = list_rust_cases([binaries[b] for b in sorted(binaries)])
    rust_binary = dict(rust_cases)
    torch_list = subprocess.run([args.python, os.path.join(HERE, "pytorch_benches.py"), "--list"],
                                capture_output=True, text=True, check=True).stdout
    torch_flops = {}
    for line in torch_list.splitlines():
        name, flops = line.split("\t")
        torch_flops[name] = None if flops == "-" else int(flops)

    names = [n for n, _ in rust_cases] + [n for n in torch_flops if n not in rust_binary]

    def selected(name):
        if not args.filters:
            return True
        for f in args.filters:
            if f in binaries:
                if rust_binary.get(name) == binaries[f]:
                    return True
            elif f in name:
                return True
        return False

    cases = [n for n in names if selected(n)]
    if not cases:
        raise SystemExit(f"no case matches {args.filters}; cases: {', '.join(names)}")
    # A rate needs the GEMM rate of the same run beside it.
    if any(torch_flops.get(n) for n in cases if not n.startswith(GEMM_PREFIX)):
        cases += [n for n in names if n.startswith(GEMM_PREFIX) and n not in cases]

    settings = ["--warm-up-time", str(args.warm_up_time),
                "--measurement-time", str(args.measurement_time),
                "--sample-size", str(args.sample_size)]
    criterion_home = args.criterion_home or os.path.join(
        os.path.dirname(os.path.dirname(os.path.dirname(next(iter(binaries.values()))))),
        "criterion")
    server = PyTorchServer(args.python, settings, args.threads)
    print(f"# {server.banner}; typednet: RAYON_NUM_THREADS={args.threads}; warm-up "
          f"{args.warm_up_time} s, measurement {args.measurement_time} s, "
          f"{args.sample_size} samples, {args.rounds} round(s), {len(cases)} cases",
          file=sys.stderr, flush=True)

    loads = [load_average()]
    ours = {n: [] for n in cases}
    theirs = {n: [] for n in cases}
    try:
        for round_index in range(args.rounds):
            for name in cases:
                sides = [("typednet", name in rust_binary), ("pytorch", name in torch_flops)]
                if round_index % 2:
                    sides.reverse()
                for side, present in sides:
                    if not present:
                        continue
                    if side == "typednet":
                        ns = run_rust(rust_binary[name], name, settings, args.threads,
                                      criterion_home)
                        if ns is not None:
                            ours[name].append(ns)
                    else:
                        ns = server.run(name)
                        if ns is not None:
                            theirs[name].append(ns)
                    loads.append(load_average())
                    print(f"  round {round_index + 1} {side:8} {name}: {fmt_ms(ns)} ms "
                          f"(load {loads[-1]})", file=sys.stderr, flush=True)
    finally:
        server.close()

    # Noise only ever adds time: the best round is the figure, the median of rounds shows the
    # spread (as in ../shared/notes/baselines.md).
    best = {n: (min(ours[n], default=None), min(theirs[n], default=None)) for n in cases}
    typical = {n: (statistics.median(ours[n]) if ours[n] else None,
                   statistics.median(theirs[n]) if theirs[n] else None) for n in cases}
    gemm_rates = {}
    for n in cases:
        if n.startswith(GEMM_PREFIX):
            gemm_rates[n] = tuple(gflops(torch_flops.get(n), t) for t in best[n])
    machine_rate = max((r for pair in gemm_rates.values() for r in pair if r), default=None)

    def time_cell(ns_best, ns_typical):
        if args.rounds > 1 and ns_best is not None:
            return f"{fmt_ms(ns_best)} ({fmt_ms(ns_typical)})"
        return fmt_ms(ns_best)

    def rate_cell(flops, ns):
        rate = gflops(flops, ns)
        if rate is None:
            return "—"
        if machine_rate:
            return f"{rate:.0f} ({100 * rate / machine_rate:.0f}%)"
        return f"{rate:.0f}"

    rows = [["case", "typednet ms", "PyTorch ms", "typednet/PyTorch",
             "typednet GFLOP/s (% sgemm)", "PyTorch GFLOP/s (% sgemm)"]]
    for n in cases:
        a, b = best[n]
        flops = torch_flops.get(n)
        rows.append([n, time_cell(a, typical[n][0]), time_cell(b, typical[n][1]),
                     f"{a / b:.2f}" if a and b else "—",
                     rate_cell(flops, a), rate_cell(flops, b)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]

    def line(cells):
        return "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    print(line(rows[0]))
    print("|" + "|".join("-" * (w + 2) if i == 0 else "-" * (w + 1) + ":"
                         for i, w in enumerate(widths)) + "|")
    for r in rows[1:]:
        print(line(r))
    print()
    print(f"{server.banner.removeprefix('ready ')}; typednet threads {args.threads}; "
          f"{args.rounds} round(s) interleaved"
          + (", the best round (the median of rounds)" if args.rounds > 1 else "")
          + "; criterion median of "
          f"{args.sample_size} samples, {args.measurement_time} s each side per case.")
    for n, (a, b) in gemm_rates.items():
        if not machine_rate:
            break
        label = "typednet gemm" if "typednet" in n else "dfdx matmul"
        parts = [f"{label} {a:.0f}" if a else None, f"torch.mm {b:.0f}" if b else None]
        print(f"sgemm rate ({n}): " + ", ".join(p for p in parts if p) + " GFLOP/s; "
              f"% sgemm is of the faster, {machine_rate:.0f} GFLOP/s.")
    if any(n.startswith("conv/") for n in cases):
        print("conv FLOPs: 2·B·O_H·O_W·C_OUT·C_IN·K_H·K_W forward, 3× that forward + backward.")
    loads = [x for x in loads if x is not None]
    if loads:
        print(f"load average during the run: {min(loads):.1f} to {max(loads):.1f} "
              f"(this run itself accounts for about {args.threads}).")
        if max(loads) > args.threads + 1:
            print("WARNING: other work was running; rerun when the machine is idle before "
                  "reading the ratios.")
            if args.threads > 1:
                print("PyTorch's OpenMP threads wait on each other at every op and suffer far "
                      "more than rayon when a core is taken away (an MLP training step took "
                      "320 ms instead of about 2.5 here with a compile running); BENCH_THREADS=1 "
                      "compares like with like on a busy machine.")
    one_sided = [n for n in cases if not (ours[n] and theirs[n])]
    if one_sided:
        print("no figure on one side: " + ", ".join(one_sided))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump({"threads": args.threads, "torch": server.banner, "settings": settings,
                       "rounds": args.rounds, "flops": {n: torch_flops.get(n) for n in cases},
                       "typednet_ns": ours, "pytorch_ns": theirs}, out, indent=1)


if __name__ == "__main__":
    main()
