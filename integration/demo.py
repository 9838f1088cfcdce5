"""augur's demo: a userspace Open vSwitch switch with three hosts connects to
augur, which completes the OpenFlow handshake and prints what it learned about
the switch. Everything started here is stopped and removed at the end.

Run by scripts/demo.sh (which installs and builds first), as root, with
Debian's /usr/bin/python3.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lib.env import require_environment  # noqa: E402
from lib.probe import Probe  # noqa: E402
from lib.topo import AugurTopology  # noqa: E402


def say(text):
    print('demo: ' + text, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--timeout', type=int, default=8,
                        help='seconds augur listens and watches the switch (default 8)')
    args = parser.parse_args()

    os.environ['AUGUR_REQUIRE_OVS'] = '1'
    require_environment()

    with Probe(timeout=args.timeout, json_output=False,
               echo=lambda line: print('  augur | ' + line, flush=True)) as probe:
        say('augur probe is listening on 127.0.0.1:%d' % probe.port)
        topo = AugurTopology(controller_port=probe.port, hosts=3)
        say('starting switch %s (dpid %s, userspace datapath, OpenFlow 1.3+1.4, '
            'fail_mode=secure, out-of-band controller tcp:127.0.0.1:%d) with 3 hosts'
            % (topo.bridge, topo.dpid, probe.port))
        with topo:
            say('hosts: ' + ', '.join('%s %s' % (h.name, h.IP()) for h in topo.hosts))
            say('waiting up to %d s for augur...' % args.timeout)
            status, stderr = probe.wait(timeout=args.timeout + 30)
        say('stopped the switch and hosts; bridge %s %s' % (
            topo.bridge, 'still exists!' if topo.exists() else 'removed'))

    learned = [line for line in probe.lines if line.startswith('switch dpid=')]
    if status != 0 or not learned:
        sys.stderr.write('demo: augur did not complete the handshake: %s\n' % stderr.strip())
        return 1
    say('augur learned: ' + learned[0][len('switch '):])
    if topo.exists():
        return 1
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        # The topology and probe context managers have cleaned up by now.
        say('interrupted; stopped augur and removed the switch')
        sys.exit(130)
