#!/usr/bin/env bash
# augur's demo: sets the machine up (installing what is missing, starting
# Open vSwitch), builds, then runs the closed loop on a Mininet topology of
# thirteen VMs on two switches, narrated: the history augur learns from,
# the changes it applies by itself, what waits for an operator and the
# `ovs-vsctl` line that approves it, a rollback, a rate limit under iperf3,
# and a scanning VM that gets nothing. Everything it starts is stopped and
# removed at the end. About two minutes after the build.
#
#   sudo bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh

bash scripts/setup.sh
find_cargo
AUGUR_BIN=$(augur_bin)
export AUGUR_BIN
exec /usr/bin/python3 integration/demo.py "$@"
