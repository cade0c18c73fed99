"""How fast the explorer answers: the time from a control change to a finished figure.

Each measurement is what the browser does: ``POST /api/run`` with the page's control values, then
``GET /api/jobs/ID`` every 20 ms until the run is done (the browser polls every 120 ms, so it sees
the answer up to 0.12 s later). Every case runs in a fresh process with its own server, so that
"cold" means what a person starting ``opioidsim explore`` meets:

- **cold, no disk cache**: ``OPIOIDSIM_JAX_CACHE=0``, the engine compiles from scratch;
- **cold, disk cache**: the compiled program is loaded from ``~/.cache/opioidsim/jax``
  (a machine where the explorer, or the same shapes, ran before);
- **after the start-up warm-up**: the server's background warm-up finished first (as when the
  page is opened a little after ``opioidsim explore`` started); the warm-up's own time is shown;
- **warm**: later runs in the same server with other doses (median and slowest of several), for
  1, 8 and 20 subjects (cohort sizes are compiled in buckets, so the first run of a bucket
  compiles once more: shown as "first").

The chronic page's default (3 subjects, 28 days of use 3 times a day, 56 days of abstinence) is
timed too with ``--chronic`` (about a minute or more on 2 cores). ``--brain-scan`` times the brain-scan
page: its default study (40 users, 40 controls; the use pattern run for 30 days) in a warm server
(the first includes compiling its three engine shapes), the same pattern with another study design
(years of use, abstinence, users: the pattern's drives and the controls are reused), and another
amount (the pattern is run again).

``--study animal-lab`` and ``--study trial`` (repeatable) time the time to first result of those study
pages in fresh processes, compiling from scratch and with the disk cache, each followed by a second
run with another control value in the same server (warm): the animal lab's default (2 rats, 1
training and 3 access sessions of 6 h, and the same rats with 1 h access), then 8 h access; the
trial's default (drug-free vs methadone, 4 people per arm on average, 2 weeks after 7 days of use),
then methadone at 60 mg. ``--study-only`` skips the acute page's cases.

Run: ``.venv/bin/python benchmarks/bench_explorer.py`` (``--json`` for one JSON object,
``--repeat N`` warm runs per size). Timings depend on the machine and what else runs on it.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

ACUTE = {"drug": "heroin", "route": "iv", "amount": "10 mg", "duration": "6h"}
AMOUNTS = ("5 mg", "15 mg", "20 mg", "30 mg", "40 mg", "8 mg", "12 mg")


def _call(url: str, method: str, path: str, body=None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url.rstrip("/") + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(req, timeout=900) as r:
        return json.loads(r.read())


def _answer(url: str, page: str, params: dict) -> float:
    """Seconds from the request to the finished result, as the browser sees it."""
    t0 = time.perf_counter()
    job = _call(url, "POST", "/api/run", {"page": page, "params": params})["job"]
    while True:
        view = _call(url, "GET", f"/api/jobs/{job}")
        if view["status"] == "done":
            return time.perf_counter() - t0
        if view["status"] in ("failed", "cancelled"):
            raise RuntimeError(f"run {view['status']}: {view.get('error')}")
        time.sleep(0.02)


#: per study page: (its default control values, the warm run's change)
STUDIES = {"animal-lab": ({}, {"access": "8h"}), "trial": ({}, {"methadone_dose": "60 mg"})}


def study_child(page: str) -> dict:
    """A fresh server: the page's default run (cold), then another value (warm)."""
    t0 = time.perf_counter()
    from opioidsim.explorer.server import make_server

    out: dict = {"mode": f"study:{page}", "import_s": time.perf_counter() - t0}
    srv = make_server("127.0.0.1", 0, warmup=False)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        first, again = STUDIES[page]
        out["first_s"] = _answer(srv.url, page, first)
        out["again_s"] = _answer(srv.url, page, again)
    finally:
        srv.shutdown()
        srv.server_close()
    return out


def child(mode: str, repeat: int, chronic: bool, brain_scan: bool = False) -> dict:
    """One fresh server in this process; returns the timings of ``mode``."""
    t0 = time.perf_counter()
    from opioidsim.explorer.server import make_server

    out: dict = {"mode": mode, "import_s": time.perf_counter() - t0}
    srv = make_server("127.0.0.1", 0, warmup=False)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = srv.url
    try:
        if mode == "warmup":
            t = time.perf_counter()
            ids = srv.warm_up()
            for job_id in ids:
                srv.jobs.wait(job_id, 1800)
            out["warmup_s"] = time.perf_counter() - t
        out["first_s"] = _answer(url, "five-steps", ACUTE)
        if mode != "warm":
            return out
        for n in (1, 8, 20):
            params = {**ACUTE, "subjects": str(n)}
            first = _answer(url, "five-steps", {**params, "amount": "11 mg"})
            times = [_answer(url, "five-steps", {**params, "amount": AMOUNTS[i % len(AMOUNTS)]})
                     for i in range(repeat)]
            out[f"warm_{n}"] = {"first_s": first, "median_s": statistics.median(times), "max_s": max(times)}
        if chronic:
            out["chronic_s"] = _answer(url, "chronic", {})
            out["chronic_again_s"] = _answer(url, "chronic", {"amount": "25 mg"})
        if brain_scan:
            out["scan_s"] = _answer(url, "brain-scan", {})
            out["scan_design_s"] = _answer(url, "brain-scan", {"abstinence": "30d", "years_max": "20", "users": "100"})
            out["scan_pattern_s"] = _answer(url, "brain-scan", {"amount": "25 mg"})
    finally:
        srv.shutdown()
        srv.server_close()
    return out


def _run_child(mode: str, repeat: int, chronic: bool, env_extra: dict, brain_scan: bool = False) -> dict:
    env = {**os.environ, **env_extra}
    cmd = ([sys.executable, __file__, "--child", mode, "--repeat", str(repeat)] + (["--chronic"] if chronic else [])
           + (["--brain-scan"] if brain_scan else []))
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--repeat", type=int, default=5, help="warm runs per cohort size (default 5)")
    ap.add_argument("--chronic", action="store_true", help="also time the chronic page's default run")
    ap.add_argument("--brain-scan", action="store_true", help="also time the brain-scan page (minutes)")
    ap.add_argument("--only-warm", action="store_true", help="skip the three cold-start cases")
    ap.add_argument("--study", action="append", choices=tuple(STUDIES), default=[],
                    help="also time this study page's first and second result (repeatable; minutes)")
    ap.add_argument("--study-only", action="store_true", help="time only the --study pages")
    ap.add_argument("--child", choices=("nocache", "cache", "warmup", "warm", *(f"study:{p}" for p in STUDIES)),
                    help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        if args.child.startswith("study:"):
            print(json.dumps(study_child(args.child.split(":", 1)[1])))
        else:
            print(json.dumps(child(args.child, args.repeat, args.chronic, args.brain_scan)))
        return 0
    if args.study_only:
        return _studies(args)

    say = (lambda m: None) if args.json else (lambda m: print(m, file=sys.stderr, flush=True))
    results = {}
    if not args.only_warm:
        say("cold start, compiling from scratch (OPIOIDSIM_JAX_CACHE=0) ...")
        results["nocache"] = _run_child("nocache", args.repeat, False, {"OPIOIDSIM_JAX_CACHE": "0"})
        say("cold start, compiled program loaded from the disk cache ...")
        results["cache"] = _run_child("cache", args.repeat, False, {})
        say("start-up warm-up, then the first request ...")
        results["warmup"] = _run_child("warmup", args.repeat, False, {})
    say("warm server ...")
    results["warm"] = _run_child("warm", args.repeat, args.chronic, {}, args.brain_scan)
    results["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "python": platform.python_version(),
                          "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}
    if args.json:
        print(json.dumps(results))
        return 0

    rows = [] if args.only_warm else [
        ("acute page, 1 subject, 6 h: first answer of a fresh server, no disk cache", results["nocache"]["first_s"]),
        ("  same, compiled program loaded from the disk cache", results["cache"]["first_s"]),
        (f"  same, after the start-up warm-up ({results['warmup']['warmup_s']:.1f} s in the background)",
         results["warmup"]["first_s"]),
    ]
    warm = results["warm"]
    for n in (1, 8, 20):
        w = warm[f"warm_{n}"]
        rows.append((f"acute page, {n} subject{'s' if n > 1 else ''}: warm, median (slowest) of {args.repeat}",
                     f"{w['median_s']:.2f} ({w['max_s']:.2f})"))
        rows.append((f"  first run of that cohort size in the server", w["first_s"]))
    if "chronic_s" in warm:
        rows.append(("chronic page default (3 subjects, 28 d use, 56 d abstinence): first", warm["chronic_s"]))
        rows.append(("  again (another amount)", warm["chronic_again_s"]))
    if "scan_s" in warm:
        rows.append(("brain-scan page default (40 users, 40 controls, pattern run 30 d): first", warm["scan_s"]))
        rows.append(("  same pattern, another design (100 users, 1-20 y, 30 d abstinent)", warm["scan_design_s"]))
        rows.append(("  another amount (the pattern runs again)", warm["scan_pattern_s"]))
    width = max(len(r[0]) for r in rows)
    print(f"{'case'.ljust(width)}  seconds")
    print(f"{'-' * width}  -------")
    for label, value in rows:
        print(f"{label.ljust(width)}  {value if isinstance(value, str) else f'{value:.2f}'}")
    m = results["machine"]
    print(f"\n{m['cpus']} CPUs, {m['platform']}, Python {m['python']}, load average {m['load_average']}")
    return _studies(args) if args.study else 0


def _studies(args) -> int:
    """Time to first result of the study pages: cold without and with the disk cache, then warm."""
    say = (lambda m: None) if args.json else (lambda m: print(m, file=sys.stderr, flush=True))
    results = {}
    for page in args.study:
        for label, env in (("nocache", {"OPIOIDSIM_JAX_CACHE": "0"}), ("cache", {})):
            say(f"{page}: fresh server, {label} ...")
            results[f"{page}:{label}"] = _run_child(f"study:{page}", 1, False, env)
    results["load_average"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    if args.json:
        print(json.dumps(results))
        return 0
    rows = []
    for page in args.study:
        for label, words in (("nocache", "compiling from scratch"), ("cache", "compiled program from the disk cache")):
            r = results[f"{page}:{label}"]
            rows.append((f"{page} default: first result of a fresh server, {words}", r["first_s"]))
            rows.append((f"  then another value in the same server (warm)", r["again_s"]))
    width = max(len(r[0]) for r in rows)
    print(f"\n{'study page'.ljust(width)}  seconds")
    print(f"{'-' * width}  -------")
    for label, value in rows:
        print(f"{label.ljust(width)}  {value:.2f}")
    print(f"load average at the end {results['load_average']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
