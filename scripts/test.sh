#!/usr/bin/env bash
# THE test command: sets the machine up (installing what is missing, starting
# Open vSwitch, building), then checks formatting, lints, runs every Rust test
# with Open vSwitch required (AUGUR_REQUIRE_OVS=1: OVS-backed tests fail
# rather than skip), a short run of every fuzz target and the Mininet
# integration tests, and ends with a
# summary. Exits non-zero if anything failed. Run as root:
#
#   sudo bash scripts/test.sh
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
source scripts/lib.sh

export AUGUR_REQUIRE_OVS=1
# One build from a clean checkout gains nothing from incremental caches,
# which took a third of its disk space (4 of 12 GB).
export CARGO_INCREMENTAL=0
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
started=$SECONDS

summary=()   # one line per step
passed=0     # tests that passed, over every runner
failed=0     # tests that failed, plus steps that failed without running tests

# run_step NAME COMMAND...: runs a step, records its outcome and duration.
run_step() {
  local name=$1
  shift
  local t0=$SECONDS
  echo
  echo "== $name"
  "$@"
  local status=$?
  local outcome=ok
  ((status == 0)) || outcome=FAILED
  last_status=$status
  last_line=$(printf '%-12s %-7s %4d s' "$name" "$outcome" $((SECONDS - t0)))
}

# Adds "N passed, N failed" counts read from a runner's log.
count_cargo_tests() {
  # test result: ok. 14 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; ...
  awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "%d %d %d\n", p, f, i }' "$1"
}

print_summary() {
  echo
  echo "== summary ($((SECONDS - started)) s)"
  printf '%s\n' "${summary[@]}"
  # A full disk fails tests far from its cause ("database or disk is full").
  disk_free
  echo "all: $passed passed, $failed failed"
}

disk_free
run_step setup bash scripts/setup.sh
summary+=("$last_line")
if ((last_status != 0)); then
  failed=$((failed + 1))
  print_summary
  exit 1
fi
find_cargo

run_step fmt cargo fmt --all --check
summary+=("$last_line")
((last_status == 0)) || failed=$((failed + 1))

run_step clippy cargo clippy --workspace --all-targets --locked -- -D warnings
summary+=("$last_line")
((last_status == 0)) || failed=$((failed + 1))

cargo_tests() {
  cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$logs/cargo-test.log"
}
run_step "cargo test" cargo_tests
read -r p f i < <(count_cargo_tests "$logs/cargo-test.log")
passed=$((passed + p))
failed=$((failed + f))
# A build failure runs no test: count it as a failure.
((last_status == 0 || f > 0)) || failed=$((failed + 1))
summary+=("$last_line   $p passed, $f failed, $i ignored")

# Every parser's fuzz target runs for a short while (longer runs: FUZZ_SECONDS).
fuzz_smoke() {
  FUZZ_SECONDS=${FUZZ_SECONDS:-20} bash scripts/fuzz.sh
}
run_step fuzz fuzz_smoke
summary+=("$last_line")
((last_status == 0)) || failed=$((failed + 1))

AUGUR_BIN=$(augur_bin)
export AUGUR_BIN
mininet_tests() {
  /usr/bin/python3 integration/run_tests.py 2>&1 | tee "$logs/integration.log"
}
run_step integration mininet_tests
read -r p f s < <(awk '/^integration: [0-9]+ passed/ { print $2, $4, $6 }' "$logs/integration.log" | tail -n 1)
p=${p:-0} f=${f:-0} s=${s:-0}
passed=$((passed + p))
failed=$((failed + f))
((last_status == 0 || f > 0)) || failed=$((failed + 1))
summary+=("$last_line   $p passed, $f failed, $s skipped")

print_summary
((failed == 0))
