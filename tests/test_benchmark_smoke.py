"""The benchmark script runs and reports sensible numbers (no timing assertions)."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_acute.py"

TOP_LEVEL = ("engine_subject_days_per_s", "scipy_subject_days_per_s", "ratio", "max_relative_error_peak",
             "max_relative_error_pointwise")
ROW_NUMBERS = ("subjects", "simulated_days", "compile_s", "run_s", "subject_days_per_s")


def _positive_finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def test_bench_acute_quick_json():
    env = dict(os.environ)
    # make the package importable whether or not it is installed (src layout)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src")] + [p for p in [env.get("PYTHONPATH")] if p])
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--json"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    assert lines, proc.stderr[-3000:]
    result = json.loads(lines[-1])

    for key in TOP_LEVEL:
        assert key in result, key
        assert _positive_finite(result[key]), (key, result[key])
    # errors are relative: an engine that disagrees with its reference by more than 100 % is broken
    assert result["max_relative_error_peak"] < 1.0
    assert result["max_relative_error_pointwise"] < 1.0

    rows = result["rows"]
    assert isinstance(rows, list) and len(rows) >= 2
    paths = [r["path"] for r in rows]
    assert any(p.startswith("engine") for p in paths) and any(p.startswith("scipy") for p in paths)
    for r in rows:
        for key in ROW_NUMBERS:
            assert _positive_finite(r[key]), (r["path"], key, r[key])
        # throughput is what the row says it is: simulated days over run time
        assert math.isclose(r["subject_days_per_s"], r["simulated_days"] / r["run_s"], rel_tol=1e-9)
    engine_rows = [r for r in rows if r["path"].startswith("engine")]
    largest = max(engine_rows, key=lambda r: r["subjects"])
    assert result["engine_subject_days_per_s"] == largest["subject_days_per_s"]
    assert math.isclose(result["ratio"], result["engine_subject_days_per_s"] / result["scipy_subject_days_per_s"],
                        rel_tol=1e-9)
    # subject-days: cohort size × simulated duration
    for r in engine_rows:
        assert math.isclose(r["simulated_days"], r["subjects"] * result["duration_min"] / 1440.0, rel_tol=1e-9)
