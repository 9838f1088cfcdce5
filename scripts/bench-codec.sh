#!/usr/bin/env bash
# Decodes the very same bytes with augur's codec and with os-ken's parser (the
# OpenStack fork of Ryu, from PyPI) in one run and prints rates and the ratio:
#   a FLOW multipart reply of 10,000 ACL entries (split into 64 KiB messages)
#   a stream of 10,000 PACKET_INs of denied TCP SYNs
#
#   bash scripts/bench-codec.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh
find_cargo

venv=${AUGUR_BENCH_VENV:-target/bench-venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c 'import os_ken' 2>/dev/null || "$venv/bin/pip" install -q os-ken
osken_version=$("$venv/bin/python" -c 'from importlib.metadata import version; print(version("os-ken"))')

cargo build --release -q -p augur-openflow --example codec_bench
bin=${CARGO_TARGET_DIR:-target}/release/examples/codec_bench
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$bin" write "$dir"

echo "input          augur entries/s   augur MB/s   os-ken $osken_version entries/s   ratio"
for input in flow_stats packet_in; do
    ours=$("$bin" decode "$dir/$input.bin" 30)
    theirs=$("$venv/bin/python" bench/osken_parse.py "$dir/$input.bin" 10000 3)
    python3 - "$input" "$ours" "$theirs" <<'PY'
import json, sys
name, ours, theirs = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
assert ours["entries"] == theirs["entries"], (ours, theirs)
rate = ours["entries"] / ours["seconds"]
peer = theirs["entries"] / theirs["seconds"]
mbps = ours["bytes"] / ours["seconds"] / 1e6
print(f"{name:<14} {rate:>15,.0f} {mbps:>12,.0f} {peer:>24,.0f} {rate / peer:>7.0f}x")
PY
done
