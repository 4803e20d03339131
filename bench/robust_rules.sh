#!/usr/bin/env bash
# Robust rules under attack with `starling simulate`: final test accuracy of
# FedAvg, coordinate median, trimmed mean and Krum when 0%, 10% or 30% of the
# clients are attackers (2NN, IID, 100 clients, C = 0.1, E = 1, B = 10).
#
#   bench/robust_rules.sh                      # sign-flip attackers, 50 rounds
#   ATTACK=scale:-4 ROUNDS=100 bench/robust_rules.sh
#
# Krum assumes f = 3 of the 10 clients per round, trimmed mean cuts β = 0.3
# from each end. JSON per run in bench/out/robust/; a table at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${STARLING_DATA:-$(cd .. && pwd)/shared/datasets/mnist}
ATTACK=${ATTACK:-sign-flip}
ROUNDS=${ROUNDS:-50}
LR=${LR:-0.1}
OUT=bench/out/robust
mkdir -p "$OUT"
STARLING=${STARLING:-}
if [[ -z $STARLING ]]; then
    cargo build --release -q -p starling-cli
    STARLING=${CARGO_TARGET_DIR:-target}/release/starling
fi
for malicious in 0 10 30; do
    for rule in fedavg median trimmed-mean krum; do
        out=$OUT/$rule-$ATTACK-$malicious.json
        [[ -s $out ]] && continue
        "$STARLING" simulate --model 2nn --partition iid --clients 100 --fraction 0.1 --epochs 1 \
            --batch-size 10 --lr "$LR" --rounds "$ROUNDS" --rule "$rule" --beta 0.3 --byzantine 3 \
            --malicious "$malicious" --attack "$ATTACK" --data "$DATA" --seed 1 --output "$out" >/dev/null 2>&1
    done
done
python3 - "$OUT" "$ATTACK" <<'PY'
import json, sys
out, attack = sys.argv[1], sys.argv[2]
rules = ["fedavg", "median", "trimmed-mean", "krum"]
print(f"attack {attack}: final test accuracy")
print(f"{'attackers':<10}" + "".join(f"{r:>14}" for r in rules))
for m in (0, 10, 30):
    row = [json.load(open(f"{out}/{r}-{attack}-{m}.json"))["rounds"][-1]["accuracy"] for r in rules]
    print(f"{str(m) + '%':<10}" + "".join(f"{a:>14.4f}" for a in row))
PY
