#!/usr/bin/env bash
# The FedAvg paper's MNIST experiments (McMahan et al. 2017, Table 1/2) with
# `starling simulate`: rounds to a target accuracy for IID and pathological
# non-IID splits over a small learning-rate grid, as the paper tuned them.
#
#   bench/fedavg_paper.sh 2nn          # 2NN, C=0.1, E=1, B=10, target 97%
#   bench/fedavg_paper.sh cnn          # CNN, C=0.1, E=5, B=10, target 99% (slow on CPU)
#   LRS="0.05 0.1" MAX_ROUNDS=300 bench/fedavg_paper.sh 2nn
#
# Results (JSON per run) go to bench/out/paper/; a table is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-2nn}
DATA=${STARLING_DATA:-$(cd .. && pwd)/shared/datasets/mnist}
OUT=bench/out/paper
mkdir -p "$OUT"
STARLING=${STARLING:-}
if [[ -z $STARLING ]]; then
    cargo build --release -q -p starling-cli
    STARLING=${CARGO_TARGET_DIR:-target}/release/starling
fi
case $MODEL in
    2nn) EPOCHS=1; TARGET=0.97; LRS=${LRS:-"0.05 0.1 0.2"}; MAX=${MAX_ROUNDS:-1500} ;;
    cnn) EPOCHS=5; TARGET=0.99; LRS=${LRS:-"0.05 0.1"}; MAX=${MAX_ROUNDS:-300} ;;
    *) echo "model: 2nn or cnn" >&2; exit 2 ;;
esac
for partition in iid shards; do
    for lr in $LRS; do
        out=$OUT/$MODEL-$partition-lr$lr.json
        [[ -s $out ]] && continue
        "$STARLING" simulate --model "$MODEL" --partition "$partition" --clients 100 --fraction 0.1 \
            --epochs "$EPOCHS" --batch-size 10 --lr "$lr" --rounds "$MAX" --target-accuracy "$TARGET" \
            --data "$DATA" --seed 1 --output "$out" 2>/dev/null
    done
done
python3 - "$OUT" "$MODEL" <<'PY'
import glob, json, os, sys
out, model = sys.argv[1], sys.argv[2]
print(f"{'partition':<9} {'lr':>5} {'rounds to target':>17} {'best accuracy':>14} {'s/round':>8}")
for path in sorted(glob.glob(os.path.join(out, f"{model}-*.json"))):
    r = json.load(open(path))
    c, rounds = r["config"], r["rounds"]
    best = max(x["accuracy"] for x in rounds)
    per = sum(x["seconds"] for x in rounds) / len(rounds)
    hit = r["rounds_to_target"]
    print(f"{c['partition']:<9} {c['lr']:>5} {str(hit) if hit else f'>{len(rounds)}':>17} {best:>14.4f} {per:>8.2f}")
PY
