#!/usr/bin/env bash
# Replay evaluation: augur against three baselines on generated scenarios
# and on the shared real traces (skipped when ../shared is absent).
#
#   bash scripts/replay-eval.sh            # everything (a few minutes)
#   bash scripts/replay-eval.sh scenario   # the generated scenarios only
#
# Each trace is replayed twice: with the default learner (Bayesian logistic
# regression), and with Gaussian naive Bayes (--model naive-bayes), of which
# only the predictor's quality is printed, for the comparison in the README.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
augur=target/release/augur
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
what=${1:-all}

# Replays once as asked, then prints naive Bayes's predictor quality on the
# same trace.
replay() {
    "$augur" replay "$@"
    echo "-- the same with --model naive-bayes:"
    "$augur" replay "$@" --model naive-bayes 2>/dev/null | grep -E '^(predictor|by kind)'
}

for seed in 1 2; do
    "$augur" scenario --seed "$seed" --days 14 --out "$work/s$seed.csv" --inventory "$work/s$seed.json" > /dev/null
    echo "== scenario seed $seed, 14 days (learning 24 h, cycle 5 min, horizon 1 h)"
    replay --trace "$work/s$seed.csv" --inventory "$work/s$seed.json"
    echo
done
[ "$what" = scenario ] && exit 0

shared=${AUGUR_SHARED:-../shared}/datasets
if [ ! -d "$shared" ]; then
    echo "no shared datasets at $shared: real traces skipped"
    exit 0
fi
for log in strato-008 strato-010; do
    # No --internal: the log's local marks name the campus's addresses.
    echo "== $log (Zeek conn.log; the campus host is the VM; learning 12 h)"
    replay --trace "$shared/$log.conn.log" --format zeek --learning 12h
    echo
done
echo "== ctu13-s11 (16 min of a campus network with a botnet; time scaled: learning 5 min, cycle 30 s, horizon 2 min, windows 10 s)"
replay --trace "$shared/ctu13-s11.csv.xz" --internal 147.32.0.0/16 \
    --learning 5m --cycle 30s --horizon 2m --episode-gap 2m --review-delay 1m --window 10s
echo
echo "== otrf-lateral (every flow an attack; no learning period: nothing may be opened automatically)"
replay --trace "$shared/otrf-lateral.csv" \
    --internal 10.0.0.0/8 --internal 172.16.0.0/12 --internal 192.168.0.0/16 \
    --learning 0s --cycle 5m
echo
echo "== otrf-lateral at its sessions' scale (cycle 10 s, horizon 1 min, windows 5 s; the months between sessions are gaps in the recording)"
replay --trace "$shared/otrf-lateral.csv" \
    --internal 10.0.0.0/8 --internal 172.16.0.0/12 --internal 192.168.0.0/16 \
    --learning 0s --cycle 10s --horizon 1m --window 5s --episode-gap 1m --review-delay 1m \
    --recording-gap 10m
