"""augur's demo: `augur run` enforces a three-tier policy on two linked
userspace Open vSwitch switches with six VM hosts, and real traffic shows
what passes and what does not. Everything started here is stopped and
removed at the end.

Run by scripts/demo.sh (which installs and builds first), as root, with
Debian's /usr/bin/python3.
"""

import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lib.env import require_environment  # noqa: E402
from lib.probe import augur_binary  # noqa: E402
from test_enforcement import PLACEMENT, POLICY_1, TCP_PORTS, UDP_PORTS  # noqa: E402


def say(text=''):
    print('demo: ' + text if text else '', flush=True)


def main():
    os.environ['AUGUR_REQUIRE_OVS'] = '1'
    require_environment()
    from lib import tiers

    workdir = tempfile.mkdtemp(prefix='augur-demo-')
    net = tiers.TieredNetwork(tiers.unused_port(), PLACEMENT)
    daemon = None
    try:
        net.start()
        say('two userspace switches %s, linked, with six VMs in three tiers:' % ' and '.join(net.bridges))
        for name, vm in net.vms.items():
            say('  %-5s tier=%-4s %s on %s port %s' % (name, vm['tier'], vm['ip'], vm['bridge'], vm['port']))
        with open(os.path.join(workdir, 'policy.toml'), 'w') as f:
            f.write(POLICY_1[0])
        config = net.write_augur_config(workdir)
        say()
        say('the policy (everything else between VMs is denied):')
        for line in POLICY_1[0].splitlines():
            if line.startswith(('name', 'from', 'to', 'proto', 'port')):
                print('        ' + line, flush=True)

        say()
        say('what augur reads from OVSDB (augur inventory):')
        inventory = subprocess.run([augur_binary(), 'inventory', '--config', config],
                                   capture_output=True, text=True, check=False)
        for line in inventory.stdout.splitlines():
            print('        ' + line, flush=True)

        daemon = tiers.AugurDaemon(config, os.path.join(workdir, 'augur.log'))
        daemon.start()
        settled = tiers.wait_until(
            lambda: all(any(b in l and ('holds the desired flows' in l or 'applied policy version' in l)
                            for l in daemon.log().splitlines()) for b in net.bridges), timeout=30)
        if not settled:
            sys.stderr.write('demo: augur did not install the policy; its log:\n%s\n' % daemon.log())
            return 1
        say()
        say('augur run installed the compiled policy (one bundle per switch):')
        for bridge in net.bridges:
            say('  %s: %d flows' % (bridge, len(net.augur_flows(bridge))))

        net.start_servers(TCP_PORTS, UDP_PORTS)
        say()
        say('every VM tries every other VM on tcp %s and udp %s:' % (
            ','.join(map(str, TCP_PORTS)), ','.join(map(str, UDP_PORTS))))
        refused = 0
        for src in net.vms:
            targets = {}
            for dst, vm in net.vms.items():
                if dst != src:
                    for proto, ports in (('tcp', TCP_PORTS), ('udp', UDP_PORTS)):
                        for port in ports:
                            targets['%s:%s:%d' % (proto, vm['ip'], port)] = (dst, proto, port)
            results = net.probe(src, list(targets), timeout=1.0)
            for target, (dst, proto, port) in targets.items():
                if results[target] == 'ok':
                    say('  allowed  %-5s -> %-5s %s/%d' % (src, dst, proto, port))
                else:
                    refused += 1
        say('  ... and %d other attempts were dropped (sampled to augur '
            'through the rate-limited deny meter)' % refused)
        return 0
    finally:
        if daemon is not None:
            daemon.stop()
        net.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        say('stopped augur and removed the switches and hosts')


if __name__ == '__main__':
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
