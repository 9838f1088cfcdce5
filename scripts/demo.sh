#!/usr/bin/env bash
# augur's demo: sets the machine up (installing what is missing), builds,
# starts `augur probe` on a free port of 127.0.0.1 and a Mininet switch with
# three hosts pointed at it, prints what augur learns about the switch, then
# stops everything it started and removes its own bridge and interfaces.
#
#   sudo bash scripts/demo.sh [--timeout SECS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh

bash scripts/setup.sh
find_cargo
AUGUR_BIN=$(augur_bin)
export AUGUR_BIN
exec /usr/bin/python3 integration/demo.py "$@"
