"""Runs augur's Mininet integration tests (integration/test_*.py) and ends
with one summary line: "integration: N passed, N failed, N skipped".

The tests: test_smoke.py (a switch connects), test_enforcement.py (policy
enforced across changes and restarts), test_observer.py (traffic recorded
with its VMs, ports and volume), test_orchestrate.py (the closed loop end
to end: learned, predicted, applied, reviewed with ovs-vsctl, rolled back,
rate-limited, and a scanner that gets nothing). `run_tests.py PATTERN` runs the files
matching PATTERN only (e.g. test_observer.py).

Run as root with Debian's /usr/bin/python3. The tests skip when Mininet or
Open vSwitch is unusable, unless AUGUR_REQUIRE_OVS=1, when they fail.
"""

import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


class CountingResult(unittest.TextTestResult):
    """Counts passes too (unittest counts only the rest)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.passed = 0

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed += 1


def main():
    sys.path.insert(0, HERE)
    pattern = sys.argv[1] if len(sys.argv) > 1 else 'test_*.py'
    suite = unittest.defaultTestLoader.discover(HERE, pattern=pattern, top_level_dir=HERE)
    started = time.monotonic()
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2,
                                     resultclass=CountingResult)
    result = runner.run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    print('integration: ran %d tests in %.1f s' % (result.testsRun, time.monotonic() - started))
    print('integration: %d passed, %d failed, %d skipped'
          % (result.passed, failed, len(result.skipped)))
    return 1 if failed or result.testsRun == 0 else 0


if __name__ == '__main__':
    sys.exit(main())
