"""Smoke test of the demo's topology: it comes up, its switch reaches
`augur probe`, and its hosts can talk once a flow lets them."""

import json
import socket
import unittest

from lib.env import require_environment
from lib.probe import Probe
from lib.topo import AugurTopology


def unused_port():
    """A local TCP port nobody listens on (for a switch whose controller is away)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class SmokeTest(unittest.TestCase):

    def setUp(self):
        require_environment()

    def test_switch_connects_to_augur_probe(self):
        with Probe(timeout=6) as probe:
            with AugurTopology(controller_port=probe.port) as topo:
                status, stderr = probe.wait(timeout=30)
                bridge_existed = topo.exists()
            self.assertFalse(topo.exists(), 'bridge %s survived stop' % topo.bridge)
        self.assertTrue(bridge_existed)
        self.assertEqual(status, 0, stderr)
        switches = [e for e in probe.events() if e['event'] == 'switch']
        self.assertEqual(len(switches), 1, probe.lines)
        self.assertEqual(switches[0]['datapath_id'], topo.dpid)
        self.assertEqual(switches[0]['version'], 'OF1.4')

    def test_hosts_reach_each_other_through_the_switch(self):
        with AugurTopology(controller_port=unused_port()) as topo:
            # fail_mode=secure: nothing passes until a flow allows it.
            h1, h2, h3 = topo.hosts
            out = h1.cmd('ping -c 1 -W 1 %s' % h2.IP())
            self.assertIn('100% packet loss', out)

            topo.add_flow('priority=0,actions=NORMAL')
            self.assertIn('actions=NORMAL', topo.dump_flows())
            for peer in (h2, h3):
                out = h1.cmd('ping -c 2 -i 0.2 -W 2 %s' % peer.IP())
                self.assertIn(' 0% packet loss', out, out)

    def test_tcp_crosses_the_userspace_datapath(self):
        with AugurTopology(controller_port=unused_port(), hosts=2) as topo:
            topo.add_flow('priority=0,actions=NORMAL')
            h1, h2 = topo.hosts
            h2.cmd('iperf3 -s -1 -D -B %s' % h2.IP())
            # The daemon needs a moment to listen, and iperf3 does not retry.
            # `timeout`: a TCP stream that hangs (checksum offload left on)
            # must fail the test, not block it.
            out = ''
            for _ in range(20):
                out = h1.cmd('timeout 15 iperf3 -c %s -t 1 -J 2>&1' % h2.IP())
                if '"bits_per_second"' in out:
                    break
                h1.cmd('sleep 0.1')
            report = json.loads(out[out.index('{'):])
            received = report['end']['sum_received']['bytes']
            self.assertGreater(received, 0, out)


if __name__ == '__main__':
    unittest.main()
