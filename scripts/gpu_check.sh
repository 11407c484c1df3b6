#!/usr/bin/env bash
# The prepared GPU check (issue #18): every study at the gpu preset, seed 0, all at once on the one GPU, then the
# training-step benchmark on the GPU (`make bench DEVICE=cuda BENCH_ARGS=--fast`). Results:
#   data/sweeps/<study>/gpu/seed-0/results.json, data/sweeps/<study>-gpu.json   (the sweep's usual files)
#   data/sweeps/bench-gpu.txt                                                  (the benchmark's table)
# Every step has a deadline; the whole check finishes in <= 10 min (studies 7 min, benchmark 2.5 min).
# Exit 0 when every study wrote its results and the benchmark ran (a benchmark figure below its target prints
# MISSED there, and does not fail the check); 1 otherwise, with the failing step named.
#
# The variables below exist so that tests/test_gpu_check.py runs this very path on a CPU at tiny sizes:
#   GPU_CHECK_PRESET (gpu)   GPU_CHECK_DEVICE (cuda)   GPU_CHECK_ROOT (the repository: where results go)
#   GPU_CHECK_STUDIES_S (420)   GPU_CHECK_BENCH_S (150)   GPU_CHECK_BENCH_ARGS ()   GPU_CHECK_JOBS (4)
#   GPU_CHECK_STUDIES (all, or study names separated by commas)
#   PYTHON (.venv/bin/python if present, else python)
set -uo pipefail
cd "$(dirname "$0")/.."

PRESET=${GPU_CHECK_PRESET:-gpu}
DEVICE=${GPU_CHECK_DEVICE:-cuda}
ROOT=${GPU_CHECK_ROOT:-$PWD}
STUDIES_S=${GPU_CHECK_STUDIES_S:-420}
BENCH_S=${GPU_CHECK_BENCH_S:-150}
BENCH_ARGS=${GPU_CHECK_BENCH_ARGS:-}
JOBS=${GPU_CHECK_JOBS:-4}
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python; fi
fi
export PYTHONHASHSEED=0 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PHENOMENA_HEADLESS=1
unset PHENOMENA_PRESET PHENOMENA_OUT

STUDY_LIST=${GPU_CHECK_STUDIES:-all}
studies=()
if [[ $STUDY_LIST == all ]]; then
  for nb in notebooks/*.ipynb; do studies+=("$(basename "$nb" .ipynb)"); done
else
  IFS=, read -ra studies <<< "$STUDY_LIST"
fi
mkdir -p "$ROOT/data/sweeps"
status=0
start=$SECONDS

echo "gpu_check: ${#studies[@]} studies at preset=$PRESET on $DEVICE, $JOBS at a time (deadline ${STUDIES_S}s)"
timeout --kill-after=15 "$STUDIES_S" "$PYTHON" -m phenomena sweep --study "$STUDY_LIST" --seeds 0 --preset "$PRESET" \
  --device "$DEVICE" --jobs "$JOBS" --root "$ROOT" --time-min $(((STUDIES_S + 59) / 60))
sweep_rc=$?
[[ $sweep_rc -eq 124 ]] && echo "gpu_check: the studies ran past their ${STUDIES_S}s deadline"
for study in "${studies[@]}"; do
  results="$ROOT/data/sweeps/$study/$PRESET/seed-0/results.json"
  if [[ -f "$results" ]]; then
    echo "gpu_check: $study ok ($results)"
  else
    echo "gpu_check: $study FAILED: no $results (sweep exit $sweep_rc)"
    status=1
  fi
done

echo "gpu_check: benchmark on $DEVICE (deadline ${BENCH_S}s)"
# shellcheck disable=SC2086  # BENCH_ARGS is a list of words
timeout --kill-after=15 "$BENCH_S" "$PYTHON" scripts/bench.py --fast --device "$DEVICE" $BENCH_ARGS \
  2>&1 | tee "$ROOT/data/sweeps/bench-$PRESET.txt"
bench_rc=${PIPESTATUS[0]}
case $bench_rc in
  0) echo "gpu_check: benchmark ok, every target met" ;;
  3) echo "gpu_check: benchmark ran; some targets MISSED (see data/sweeps/bench-$PRESET.txt)" ;;
  *) echo "gpu_check: benchmark FAILED (exit $bench_rc)"; status=1 ;;
esac
echo "gpu_check: done in $((SECONDS - start)) s, exit $status"
exit $status
