"""What the integration tests need from the machine, checked once."""

import os
import shutil
import subprocess
import unittest

from lib.probe import augur_binary


def _problem():
    """Why the tests cannot run here, or None."""
    if os.geteuid() != 0:
        return 'not running as root'
    try:
        import mininet.net  # noqa: F401  (Debian's python3-mininet)
    except ImportError:
        return 'no mininet module (run with /usr/bin/python3; apt-get install mininet)'
    for tool in ('ovs-vsctl', 'ovs-ofctl', 'ethtool', 'ping', 'iperf3', 'timeout'):
        if shutil.which(tool) is None:
            return '%s is not installed' % tool
    if subprocess.run(['ovs-vsctl', '--timeout=5', 'show'],
                      capture_output=True).returncode != 0:
        return 'Open vSwitch is not running'
    if not os.access(augur_binary(), os.X_OK):
        return 'no augur binary at %s (cargo build, or set AUGUR_BIN)' % augur_binary()
    return None


def require_environment():
    """Skips the calling test when the machine cannot run it, or fails it when
    AUGUR_REQUIRE_OVS=1 (as scripts/test.sh sets)."""
    problem = _problem()
    if problem is None:
        return
    if os.environ.get('AUGUR_REQUIRE_OVS') == '1':
        raise AssertionError('AUGUR_REQUIRE_OVS=1 but ' + problem
                             + '; `sudo bash scripts/setup.sh` installs and starts what is missing')
    raise unittest.SkipTest(problem)
