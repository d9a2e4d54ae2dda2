#!/usr/bin/env python3
"""Replay throughput of `mamori replay cdr` beside DuckDB, on one core, on the same CSV, in one run.

Steps (each printed to stderr as it runs; the markdown tables go to stdout):

1. build the release binaries (`mamori-cdr-synth`, `mamori`) unless --no-build;
2. generate the CDR file (default 10M rows: 20,000 lines, 28 days from 2026-11-01) with its truth
   and subscriber files, unless the same file already exists in --dir (a sidecar records the options);
   plus a file 1/10 the size from the same population, to show that memory doesn't grow with the file;
3. read the file once so both tools start from the page cache;
4. per run: DuckDB (Python package, `SET threads = 1`) computing per-line hourly international
   charge sums from the CSV, then `mamori replay cdr FILE --subscribers SUBS --quiet > events.jsonl`
   (parsing, reordering, de-duplication, every phone.* detector, governance and the ledger), both
   under `taskset -c CPU` and `/usr/bin/time` (wall time, CPU time, peak RSS);
5. DuckDB once more with every core, for context;
6. mamori on the small file (peak RSS vs the big file);
7. evaluate.py on the big file's truth and events (detection quality at that scale).

DuckDB is installed in a venv next to this script: `python3 -m venv bench/replay/.venv &&
bench/replay/.venv/bin/pip install duckdb` (the script does this itself if the venv is missing).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
VENV_PY = HERE / ".venv" / "bin" / "python"


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    log("$ " + " ".join(str(c) for c in cmd))
    return subprocess.run(cmd, check=True, **kw)


def timed(cmd: list[str], cpu: str | None, stdout=None) -> dict:
    """Runs cmd under /usr/bin/time (and taskset); returns wall, user, sys seconds and peak RSS."""
    tfile = HERE / ".time.out"
    full = ["/usr/bin/time", "-o", str(tfile), "-f", "%e %U %S %M"]
    if cpu is not None:
        full += ["taskset", "-c", cpu]
    full += cmd
    log("$ " + " ".join(full))
    began = time.perf_counter()
    p = subprocess.run(full, stdout=stdout if stdout is not None else subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - began
    if p.returncode != 0:
        sys.stderr.write(p.stderr)
        raise SystemExit(f"failed ({p.returncode}): {' '.join(cmd)}")
    e, u, s, m = tfile.read_text().split()[-4:]
    tfile.unlink()
    return {"wall": float(e), "wall_py": wall, "user": float(u), "sys": float(s), "rss_mb": int(m) / 1024,
            "stdout": p.stdout if stdout is None else "", "stderr": p.stderr}


def ensure_duckdb() -> str:
    if not VENV_PY.exists():
        run([sys.executable, "-m", "venv", str(HERE / ".venv")])
    try:
        out = subprocess.run([str(VENV_PY), "-c", "import duckdb; print(duckdb.__version__)"], check=True,
                             capture_output=True, text=True).stdout.strip()
    except subprocess.CalledProcessError:
        run([str(VENV_PY), "-m", "pip", "install", "-q", "duckdb"])
        out = subprocess.run([str(VENV_PY), "-c", "import duckdb; print(duckdb.__version__)"], check=True,
                             capture_output=True, text=True).stdout.strip()
    return out


def generate(synth: Path, out_dir: Path, name: str, opts: dict) -> dict:
    """Generates name.csv/.truth.jsonl/.subs.csv unless present with the same options."""
    cdr, truth, subs, side = (out_dir / f"{name}.csv", out_dir / f"{name}.truth.jsonl",
                              out_dir / f"{name}.subs.csv", out_dir / f"{name}.json")
    profiles = out_dir / f"{name}.profiles.csv"
    # The generator's own bytes are part of the options: a changed generator writes a different file.
    generator = hashlib.sha256(synth.read_bytes()).hexdigest()[:16]
    if side.exists() and cdr.exists() and profiles.exists():
        meta = json.loads(side.read_text())
        if meta.get("opts") == opts and meta.get("generator_sha256") == generator:
            log(f"{cdr} exists with the same options and generator; reusing it")
            return meta
    cmd = [str(synth), "--out", str(cdr), "--truth", str(truth), "--subscribers", str(subs), "--profiles", str(profiles)]
    for k, v in opts.items():
        cmd += [f"--{k.replace('_', '-')}", str(v)]
    t = timed(cmd, None)
    summary = t["stderr"].strip().splitlines()[-1]
    rows = sum(1 for _ in open(cdr, "rb")) - 1
    meta = {"opts": opts, "rows": rows, "bytes": cdr.stat().st_size, "command": " ".join(cmd),
            "generator": summary, "generate_seconds": t["wall"], "cdr": str(cdr), "truth": str(truth),
            "subs": str(subs), "profiles": str(profiles), "generator_sha256": generator}
    side.write_text(json.dumps(meta, indent=1))
    return meta


def machine() -> list[tuple[str, str]]:
    model = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return [("CPUs", f"{os.cpu_count()} × {model}"), ("memory", mem), ("kernel", platform.release()),
            ("toolchain", rustc), ("load average at start", load)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000, help="rows of the big file")
    ap.add_argument("--lines", type=int, default=20_000)
    ap.add_argument("--days", type=int, default=28)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--malformed-rate", type=float, default=0.0001)
    ap.add_argument("--dir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "mamori-bench-replay")
    ap.add_argument("--cpu", default="0", help="the core both tools are pinned to (taskset -c)")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--skip-mamori", action="store_true", help="only the generator and DuckDB")
    ap.add_argument("--skip-small", action="store_true", help="no memory comparison on a file 1/10 the size")
    args = ap.parse_args()

    args.dir.mkdir(parents=True, exist_ok=True)
    target = ROOT / "target" / "release"
    synth, mamori = target / "mamori-cdr-synth", target / "mamori"
    if not args.no_build:
        pkgs = ["-p", "mamori-phone-synth"] + ([] if args.skip_mamori else ["-p", "mamori"])
        run(["cargo", "build", "--release", *pkgs], cwd=ROOT)
    duckdb_version = ensure_duckdb()
    info = machine()

    opts = {"lines": args.lines, "days": args.days, "seed": args.seed, "target_rows": args.rows,
            "malformed_rate": args.malformed_rate}
    big = generate(synth, args.dir, "big", opts)
    small = None
    if not args.skip_small and not args.skip_mamori:
        small = generate(synth, args.dir, "small", {**opts, "days": max(1, args.days // 10),
                                                    "target_rows": args.rows // 10})
    log("reading the file once into the page cache")
    with open(big["cdr"], "rb") as f:
        while f.read(1 << 24):
            pass

    results: list[dict] = []
    for r in range(args.runs):
        d = timed([str(VENV_PY), str(HERE / "duckdb_query.py"), big["cdr"], "--threads", "1"], args.cpu)
        d["json"] = json.loads(d["stdout"].strip().splitlines()[-1])
        results.append({"run": r + 1, "tool": "duckdb", **d})
        if not args.skip_mamori:
            events = args.dir / "big.events.jsonl"
            with open(events, "w") as out:
                m = timed([str(mamori), "replay", "cdr", big["cdr"], "--subscribers", big["subs"], "--quiet"],
                          args.cpu, stdout=out)
            m["events"] = sum(1 for _ in open(events))
            results.append({"run": r + 1, "tool": "mamori", **m})
    d_all = timed([str(VENV_PY), str(HERE / "duckdb_query.py"), big["cdr"], "--threads", str(os.cpu_count())], None)
    d_all["json"] = json.loads(d_all["stdout"].strip().splitlines()[-1])
    small_run = None
    if small is not None:
        with open(args.dir / "small.events.jsonl", "w") as out:
            small_run = timed([str(mamori), "replay", "cdr", small["cdr"], "--subscribers", small["subs"], "--quiet"],
                              args.cpu, stdout=out)

    # ---- report ----
    rows = big["rows"]
    p = print
    p(f"Command: `python3 bench/replay/bench.py {' '.join(sys.argv[1:])}`".rstrip() + "  ")
    p(f"File: {big['cdr']}: {rows:,} rows, {big['bytes'] / 1e6:,.0f} MB; generated by `{big['command']}` "
      f"in {big['generate_seconds']:.1f} s ({big['generator'].split(': ', 1)[-1]})  ")
    p(f"DuckDB {duckdb_version} (Python package); both pinned with `taskset -c {args.cpu}`  ")
    p("Machine: " + "; ".join(f"{k}: {v}" for k, v in info) + "\n")
    p("| run | tool | what | rows | seconds | rows/s | vs DuckDB | CPU user+sys (s) | peak RSS |")
    p("|--:|---|---|--:|--:|--:|--:|--:|--:|")
    duck_rate: dict[int, float] = {}
    for res in results:
        if res["tool"] == "duckdb":
            secs = res["json"]["seconds"]
            duck_rate[res["run"]] = rows / secs
            what = ("per-line hourly international charge sums from the CSV (query time; process "
                    f"{res['wall']:.2f} s with interpreter start)")
        else:
            secs = res["wall"]
            what = f"`mamori replay cdr` (whole process: parse, reorder, dedupe, detect, govern, ledger); {res['events']:,} events"
        rate = rows / secs
        ratio = rate / duck_rate[res["run"]] if res["run"] in duck_rate else float("nan")
        p(f"| {res['run']} | {res['tool']} | {what} | {rows:,} | {secs:.2f} | {rate:,.0f} | {ratio:.2f}× | "
          f"{res['user'] + res['sys']:.2f} | {res['rss_mb']:,.0f} MB |")
    p(f"| – | duckdb | same query, `SET threads = {os.cpu_count()}`, not pinned (context) | {rows:,} | "
      f"{d_all['json']['seconds']:.2f} | {rows / d_all['json']['seconds']:,.0f} | – | "
      f"{d_all['user'] + d_all['sys']:.2f} | {d_all['rss_mb']:,.0f} MB |")
    p()
    p(f"DuckDB's answer: {d_all['json']['groups']:,} (line, hour) groups, {d_all['json']['international_calls']:,} "
      f"international rows, {d_all['json']['international_charge_jpy']:,} yen.")
    for res in results:
        if res["tool"] == "mamori":
            tail = [line for line in res["stderr"].strip().splitlines() if line][-2:]
            p(f"mamori run {res['run']} (stderr): " + " / ".join(f"`{t}`" for t in tail))
    if small_run is not None:
        p()
        p(f"Memory: `mamori replay cdr` peak RSS {small_run['rss_mb']:,.0f} MB on {small['rows']:,} rows "
          f"({small['opts']['days']} days) vs "
          f"{max(r['rss_mb'] for r in results if r['tool'] == 'mamori'):,.0f} MB on {rows:,} rows ({args.days} days), "
          f"same {args.lines:,} lines.")
    if not args.skip_mamori:
        p()
        log("evaluating detection on the big file")
        ev = subprocess.run([sys.executable, str(HERE / "evaluate.py"), big["truth"], str(args.dir / "big.events.jsonl"),
                             "--profiles", big["profiles"], "--json", str(args.dir / "big.quality.json")],
                            capture_output=True, text=True)
        p(ev.stdout if ev.returncode == 0 else f"evaluate.py failed: {ev.stderr}")
    shutil.rmtree(HERE / "__pycache__", ignore_errors=True)


if __name__ == "__main__":
    main()
