#!/usr/bin/env bash
# Local training speed: Starling (burn, CPU flex backend) next to PyTorch on
# the same model, data, batch size and thread count, in one run.
#
#   bench/train_compare.sh                 # 2nn and cnn, batch 10 and 50
#   PYTHON=/path/to/python bench/train_compare.sh
#
# PyTorch comes from $PYTHON (default: bench/.venv-torch/bin/python, made
# here with `pip install torch numpy` if missing). Both sides use
# $THREADS threads (default: all cores). Prints samples/s and the ratio
# Starling / PyTorch (> 1: Starling is faster).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${STARLING_DATA:-$(cd .. && pwd)/shared/datasets/mnist}
THREADS=${THREADS:-$(nproc)}
REPS=${REPS:-5}
PYTHON=${PYTHON:-bench/.venv-torch/bin/python}
if [[ ! -x $PYTHON ]]; then
    python3 -m venv bench/.venv-torch
    bench/.venv-torch/bin/pip install -q torch numpy
    PYTHON=bench/.venv-torch/bin/python
fi
cargo build --release -q -p starling-models --example train_speed
BIN=${CARGO_TARGET_DIR:-target}/release/examples/train_speed
export RAYON_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS STARLING_DATA=$DATA
printf '%-6s %5s %14s %14s %7s\n' model batch starling/s pytorch/s ratio
for case in "2nn 10 3000" "2nn 50 6000" "cnn 10 600" "cnn 50 1200"; do
    read -r model batch samples <<<"$case"
    ours=$("$BIN" "$model" "$batch" "$samples" "$REPS")
    theirs=$("$PYTHON" bench/train_speed.py "$model" "$batch" "$samples" "$REPS" "$DATA" "$THREADS")
    python3 - "$ours" "$theirs" <<'PY'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"{a['model']:<6} {a['batch']:>5} {a['median']:>14.0f} {b['median']:>14.0f} {a['median'] / b['median']:>6.2f}x")
PY
done
