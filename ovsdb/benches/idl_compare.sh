#!/usr/bin/env bash
# Replica speed of augur-ovsdb against the `ovs` Python IDL, both on the same
# private ovsdb-server in the same run. Prints both timings and the ratio.
#
#   ovsdb/benches/idl_compare.sh [--rows N] [--rounds R]
#
# Needs ovsdb-server, ovsdb-tool and vswitch.ovsschema (Debian:
# openvswitch-switch) and python3 with venv; installs the `ovs` package from
# PyPI into a virtualenv under target/ (reused across runs; override with
# IDL_VENV).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
schema="${OVS_SCHEMA:-/usr/share/openvswitch/vswitch.ovsschema}"
venv="${IDL_VENV:-$root/target/idl-venv}"

for tool in ovsdb-server ovsdb-tool python3; do
    command -v "$tool" >/dev/null || PATH="$PATH:/usr/sbin"
    command -v "$tool" >/dev/null || { echo "idl_compare: $tool not found" >&2; exit 1; }
done
[ -f "$schema" ] || { echo "idl_compare: $schema not found (set OVS_SCHEMA)" >&2; exit 1; }

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import ovs.db.idl' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet ovs
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/augur-idl-compare.XXXXXX")"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

ovsdb-tool create "$work/conf.db" "$schema"
ovsdb-server "$work/conf.db" --remote="punix:$work/db.sock" --unixctl="$work/ctl" \
    --no-chdir --log-file="$work/ovsdb-server.log" -vconsole:off 2>/dev/null &
server_pid=$!
for _ in $(seq 100); do [ -S "$work/db.sock" ] && break; sleep 0.05; done
[ -S "$work/db.sock" ] || { echo "idl_compare: ovsdb-server did not start" >&2; exit 1; }

echo "python ovs $("$venv/bin/python" -c 'import ovs.version; print(ovs.version.VERSION)'), $(ovsdb-server --version | head -1)"
cd "$root"
cargo bench -p augur-ovsdb --bench idl_compare -- \
    --target "unix:$work/db.sock" --python "$venv/bin/python" --schema "$schema" "$@"
