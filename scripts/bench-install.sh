#!/usr/bin/env bash
# Installs the same compiled ACL table (10,000 and 100,000 flows) into fresh
# userspace Open vSwitch bridges twice in one run: through augur's switch
# driver in one OpenFlow 1.4 bundle (SwitchHandle::apply_atomically, as the
# daemon does), and from a file with `ovs-ofctl -O OpenFlow14 --bundle
# add-flows`; prints both times and the ratio. For 100,000 flows it also
# times reconciling the installed table with one where 1% of the flows differ
# (dump by cookie + diff + apply). Run as root with Open vSwitch started
# (`sudo bash scripts/setup.sh` starts it):
#
#   sudo bash scripts/bench-install.sh                      # 10k and 100k, 3 rounds
#   sudo bash scripts/bench-install.sh --flows 1000 --rounds 5
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh
find_cargo

((EUID == 0)) || die "run as root (it creates Open vSwitch bridges)"
ovs-vsctl --timeout=5 show >/dev/null 2>&1 || die "Open vSwitch is not running (sudo bash scripts/setup.sh)"

cargo build --release -q --example bench_install
echo "ovs-vswitchd $(ovs-vswitchd --version | awk 'NR == 1 { print $NF }'), $(nproc) cores"
"${CARGO_TARGET_DIR:-target}/release/examples/bench_install" "$@"
