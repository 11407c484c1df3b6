"""Benchmarks behind the issues' speed and memory targets: ``make bench`` (or ``python scripts/bench.py``).

1. Every notebook at a preset, run headlessly with papermill in a scratch output folder and with the cache off
   (``PHENOMENA_NO_CACHE=1``) so that it measures the real computation: wall time of the whole run (kernel start
   included) and the kernel's peak resident memory, against each study's targets.
2. Study-specific micro-benchmarks (``benchmarks/micro.py``), e.g. training throughput of our transformer vs Hugging
   Face's ``GPT2Model`` backbone of the same size at the ICL quick config, thread-count timings, analysis speed.

Use ``--no-notebooks`` for the micro-benchmarks alone, ``--studies NAME ...`` to pick studies.

Nothing here writes to the repository's figures/ or data/.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: one notebook runs at a time here, so it may use every core (make figures and make test run two at once, each on one
#: thread; the LoRA and ICL numbers differ between thread counts only in the last digits of SVDs and small kernels)
THREADS = os.cpu_count() or 1
sys.path.insert(0, str(REPO))  # the benchmarks/ package

# Targets from the issues: wall seconds per preset and peak memory (MiB) at quick.
TARGETS: dict[str, dict[str, float]] = {
    "icl_linear_regression": {"smoke": 30, "quick": 300, "mem_mb": 3072},
    "induction_heads": {"smoke": 30, "quick": 300, "mem_mb": 3072},
    "lora_intruder_dimensions": {"smoke": 45, "quick": 360, "mem_mb": 4096},
    "powerlaw_rehearsal": {"smoke": 30, "quick": 300, "mem_mb": 2048},
}


def run_notebook(study: str, preset: str, out: Path) -> dict[str, float | str | bool]:
    """Execute one notebook with papermill; return wall time, peak memory and the claims' status."""
    env = {**os.environ, "PHENOMENA_OUT": str(out), "PHENOMENA_NO_CACHE": "1", "PHENOMENA_HEADLESS": "1"}
    env.pop("PHENOMENA_PRESET", None)
    cmd = [
        sys.executable, "-m", "papermill", str(REPO / "notebooks" / f"{study}.ipynb"),
        str(out / f"{study}.ipynb"), "-k", "python3", "-p", "preset", preset, "-p", "threads", str(THREADS),
        "--cwd", str(REPO / "notebooks"),
    ]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    result: dict[str, float | str | bool] = {"study": study, "preset": preset, "wall_s": round(wall, 1)}
    results = out / "data" / "results" / f"{study}.json"
    if results.exists():
        rec = json.loads(results.read_text())
        result["peak_mb"] = rec.get("peak_rss_mb", float("nan"))
        result["claims_passed"] = all(c["passed"] for c in rec["claims"])
    result["ok"] = proc.returncode == 0
    if proc.returncode:
        result["error"] = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"
    return result


def report_notebooks(studies: list[str], preset: str) -> bool:
    ok = True
    print(
        f"\n== notebooks at preset={preset}, one at a time, {THREADS} thread(s) (cache off; kernel start included) =="
    )
    print(f"{'study':<28}{'wall s':>8}{'target':>8}{'peak MiB':>10}{'target':>8}  status")
    with tempfile.TemporaryDirectory(prefix="phenomena-bench-") as tmp:
        for study in studies:
            r = run_notebook(study, preset, Path(tmp))
            t = TARGETS.get(study, {})
            t_wall, t_mem = t.get(preset, float("inf")), t.get("mem_mb", float("inf"))
            peak = float(r.get("peak_mb", float("nan")))
            good = bool(r["ok"]) and float(r["wall_s"]) <= t_wall and (preset != "quick" or peak <= t_mem)
            ok &= good
            status = "ok" if good else f"MISSED {r.get('error', '')}"
            print(f"{study:<28}{r['wall_s']:>8}{t_wall:>8g}{peak:>10.0f}{t_mem:>8g}  {status}", flush=True)
    return ok


def micro_benchmarks(study: str) -> None:
    """Run a study's micro-benchmark (``benchmarks.micro.MICRO``), if it has one."""
    from benchmarks.micro import MICRO

    if study in MICRO:
        print(f"\n== {study}: micro-benchmark ==", flush=True)
        MICRO[study]()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="quick", choices=["smoke", "quick", "paper"])
    parser.add_argument("--studies", nargs="*", default=None, help="default: every notebook")
    parser.add_argument("--no-notebooks", action="store_true", help="only the micro-benchmarks")
    parser.add_argument("--no-micro", action="store_true", help="only the notebooks")
    args = parser.parse_args()
    studies = args.studies or sorted(p.stem for p in (REPO / "notebooks").glob("*.ipynb"))
    unknown = sorted(set(studies) - {p.stem for p in (REPO / "notebooks").glob("*.ipynb")})
    if unknown:
        parser.error(f"unknown studies {unknown}")
    ok = True
    if not args.no_micro:
        for study in studies:
            micro_benchmarks(study)
    if not args.no_notebooks:
        ok = report_notebooks(studies, args.preset)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
