#!/usr/bin/env bash
# Runs every fuzz target for a while (default 30 s each; FUZZ_SECONDS overrides),
# seeding the OpenFlow corpus with the Ryu fixtures when ../shared is present
# and the operator-text corpus with the example policy.
#
# cargo-fuzz needs nightly-only rustc flags; RUSTC_BOOTSTRAP lets the stable
# toolchain accept them, since no other toolchain can be installed here.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-30}
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
export RUSTC_BOOTSTRAP=1

shared=${AUGUR_SHARED:-../shared}
targets=$(cd fuzz && cargo fuzz list)
crashed=()
for target in $targets; do
    corpus=fuzz/corpus/$target
    mkdir -p "$corpus"
    case $target in
    openflow_*)
        if [ -d "$shared/fixtures/openflow/ryu" ]; then
            find "$shared/fixtures/openflow/ryu" -name '*.packet' -exec cp -n {} "$corpus/" \;
        fi
        ;;
    operator_text)
        cp -n examples/policy/three-tier.toml "$corpus/"
        printf '%s' 'approve by alice: needed for the nightly backup' >"$corpus/decision"
        ;;
    esac
    echo "fuzz: $target for ${seconds}s"
    (cd fuzz && cargo fuzz run "$target" -O -- -max_total_time="$seconds" -print_final_stats=1 2>&1) |
        grep -E 'stat::number_of_executed_units|Done|ERROR|panicked|SUMMARY' || true
    # A crash leaves an artifact; every target still runs, and the script
    # fails at the end naming each one.
    if compgen -G "fuzz/artifacts/$target/crash-*" >/dev/null; then
        echo "fuzz: $target found a crash:" fuzz/artifacts/"$target"/crash-*
        crashed+=("$target")
    fi
done
if ((${#crashed[@]})); then
    echo "fuzz: crashes in ${crashed[*]}"
    exit 1
fi
