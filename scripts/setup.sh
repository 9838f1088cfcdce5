#!/usr/bin/env bash
# Makes a Debian 12 machine ready for augur's demo and tests, and builds it.
#
# Idempotent; run as root. Installs the packages that are missing (apt-get
# update only then), starts Open vSwitch if it is not running (userspace
# datapath: no kernel module is needed), checks for Rust >= 1.85 and builds
# the workspace. Quiet when all is well; on failure it prints the output of
# the step that failed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh

PACKAGES=(
  openvswitch-switch         # ovsdb-server, ovs-vswitchd, ovs-vsctl, ovs-ofctl
  openvswitch-testcontroller # reference controller for side-by-side runs
  mininet                    # test topologies (Debian's python3 module)
  python3
  iproute2                   # Mininet's `ip`
  iputils-ping
  ethtool                    # checksum offload off for TCP on the userspace datapath
  iperf3
  python3-venv
  python3-pip
)

log=$(mktemp)
trap 'rm -f "$log"' EXIT

# Runs a command with its output kept aside; shows it only if the command fails.
quietly() {
  if ! "$@" >"$log" 2>&1; then
    echo "setup: FAILED: $*" >&2
    tail -n 60 "$log" >&2
    exit 1
  fi
}

[ "$(id -u)" -eq 0 ] || die "run as root (it installs packages and starts Open vSwitch): sudo bash scripts/setup.sh"

missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' ||
    missing+=("$package")
done
if ((${#missing[@]})); then
  command -v apt-get >/dev/null || die "apt-get not found: this script supports Debian 12 (install ${missing[*]} by hand)"
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  quietly apt-get update
  quietly apt-get install -y --no-install-recommends "${missing[@]}"
fi

ovs_running() {
  ovs-vsctl --timeout=5 show >/dev/null 2>&1 &&
    ovs-appctl --timeout=5 -t ovs-vswitchd version >/dev/null 2>&1
}
if ! ovs_running; then
  echo "setup: starting Open vSwitch"
  # Without a kernel module it says "Kernel has no loadable module support":
  # harmless, augur's bridges use the userspace datapath.
  quietly /usr/share/openvswitch/scripts/ovs-ctl start --system-id=random
  if ! ovs_running; then
    echo "setup: FAILED: Open vSwitch did not start" >&2
    tail -n 30 /var/log/openvswitch/ovs-vswitchd.log /var/log/openvswitch/ovsdb-server.log >&2 2>/dev/null || true
    exit 1
  fi
fi

find_cargo
quietly cargo build --workspace --all-targets --locked
