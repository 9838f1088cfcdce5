"""The live observer end to end: `augur run` in enforce mode controlling a
userspace switch with a client VM and a server VM, real traffic between
them, and the records augur stored, read back with `augur export`.

Traffic (one after the other, client to server):
- 20 short TCP connections (connect, one echoed line, close) to port 7000;
- 5 connection attempts to port 2222, which the policy does not allow;
- iperf3 TCP for 5 s and iperf3 UDP at 20 Mbit/s for 3 s, on port 5201.

Checked in the export: every row names the right VMs, protocol and service
port; exactly 20 connections on tcp/7000; 5 denied attempts on tcp/2222;
the volumes on tcp/5201 and udp/5201 match what iperf3 reports (its JSON
output) within 5% once per-packet headers are accounted for:

- OVS counts whole Ethernet frames without the FCS. A TCP packet of the
  iperf3 connections carries Ethernet 14 + IPv4 20 + TCP 32 (20 and the
  12-byte timestamp option Linux sends by default) = 66 bytes of headers:
  the data segments one way, and the ACK stream, the handshake and the
  teardown the other way, all counted by the connection's counting flow.
  Expected bytes = iperf3's payload bytes + 66 x the packets augur recorded
  on tcp/5201. The iperf3 control connections (a few kB of JSON) and the
  handshakes' longer options are inside the 5%.
- A UDP datagram carries Ethernet 14 + IPv4 20 + UDP 8 = 42 bytes of
  headers; iperf3 reports the datagrams it sent. Expected bytes = iperf3's
  payload bytes + 42 x datagrams (plus the two 4-byte connect datagrams).

A second test runs augur in learn mode with a policy that allows only the
iperf3 control port: the short connections and an iperf3 UDP test, which
enforce mode would deny, pass, and are recorded as allowed connections with
the same volume model; nothing is recorded as denied.

Run with Debian's /usr/bin/python3 as root (`scripts/test.sh` does, through
run_tests.py); never `mn -c`.
"""

import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from lib.env import require_environment
from lib.probe import augur_binary

# Imported after the environment check (it imports mininet).
tiers = None

PLACEMENT = [[('cli', 'client'), ('srv', 'server')], []]
SHORT_PORT = 7000
SHORT_CONNECTIONS = 20
DENIED_PORT = 2222
DENIED_ATTEMPTS = 5
IPERF_PORT = 5201
TCP_HEADERS = 14 + 20 + 32
UDP_HEADERS = 14 + 20 + 8

POLICY = """
[groups.clients]
vms = ["cli"]

[groups.servers]
vms = ["srv"]

[[allow]]
name = "iperf3 control and TCP tests"
from = "clients"
to = "servers"
proto = "tcp"
port = 5201

[[allow]]
name = "iperf3 UDP tests"
from = "clients"
to = "servers"
proto = "udp"
port = 5201

[[allow]]
name = "short requests"
from = "clients"
to = "servers"
proto = "tcp"
port = 7000
"""

# Learn mode: only iperf3's control connections have a rule.
LEARN_POLICY = POLICY[:POLICY.index('[[allow]]\nname = "iperf3 UDP tests"')]

# Run inside the client: N connections, each one echoed line, then close.
SHORT_CLIENT = """
import socket, sys
ip, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ok = 0
for i in range(n):
    with socket.create_connection((ip, port), timeout=5) as s:
        s.sendall(b'ping %d\\n' % i)
        if s.recv(64):
            ok += 1
print(ok)
"""

# Run inside the client: N attempts, each given up after 0.5 s (before the
# kernel resends the SYN), so each attempt is one packet.
DENIED_CLIENT = """
import socket, sys
ip, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
passed = 0
for i in range(n):
    try:
        socket.create_connection((ip, port), timeout=0.5).close()
        passed += 1
    except OSError:
        pass
print(passed)
"""


class ObserverTest(unittest.TestCase):

    def setUp(self):
        require_environment()
        global tiers
        from lib import tiers as module
        tiers = module
        self.workdir = tempfile.mkdtemp(prefix='augur-observer-')
        self.addCleanup(shutil.rmtree, self.workdir, ignore_errors=True)
        self.controller_port = tiers.unused_port()
        self.net = tiers.TieredNetwork(self.controller_port, PLACEMENT)
        self.daemon = None
        self.servers = []
        self.net.start()
        self.addCleanup(self._cleanup)

    def _cleanup(self):
        for server in self.servers:
            if server.poll() is None:
                server.kill()
            server.wait()
        if self.daemon is not None:
            self.daemon.stop()
        self.net.stop()

    def start_augur(self, mode, policy):
        with open(os.path.join(self.workdir, 'policy.toml'), 'w') as f:
            f.write(policy)
        path = self.net.write_augur_config(self.workdir)
        with open(path) as f:
            config = f.read()
        self.store = os.path.join(self.workdir, 'history')
        # Top-level keys go before the first table.
        config = config.replace('reload_interval = "300ms"\n',
                                'reload_interval = "300ms"\nmode = "%s"\n' % mode, 1)
        config += ('\n[observer]\nstore = "%s"\npoll_interval = "1s"\nwindow = "5s"\n'
                   'connection_idle = "3s"\n' % self.store)
        with open(path, 'w') as f:
            f.write(config)
        self.daemon = tiers.AugurDaemon(path, os.path.join(self.workdir, 'augur.log'))
        self.daemon.start()
        settled = tiers.wait_until(
            lambda: all(any(b in line and ('holds the desired flows' in line
                                           or 'applied policy version' in line)
                            for line in self.daemon.log().splitlines())
                        for b in self.net.bridges),
            timeout=30)
        self.assertTrue(settled, 'augur did not settle:\n' + self.daemon.log()[-4000:])

    def in_host(self, name, *args, timeout=60):
        """Runs a command in host `name`; returns its stdout."""
        process = self.net.host(name).popen(list(args), stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, text=True)
        out, err = process.communicate(timeout=timeout)
        self.assertEqual(process.returncode, 0, '%s: %s%s' % (args, out, err))
        return out

    def iperf3(self, *args):
        out = self.in_host('cli', 'iperf3', '-c', self.net.vms['srv']['ip'],
                           '-p', str(IPERF_PORT), '-J', *args)
        return json.loads(out)

    def counting_flows(self):
        bridge = self.net.vms['cli']['bridge']
        out = self.net.ofctl(bridge, 'dump-flows', '--no-stats', 'table=6')
        return [line for line in out.splitlines() if 'ct_tp_dst=' in line]

    def exported(self):
        """The stored rows, summed per (src, dst, proto, port, verdict)."""
        out = subprocess.run([augur_binary(), 'export', 'jsonl', '-', '--store', self.store],
                             capture_output=True, text=True, check=True).stdout
        rows = {}
        for line in out.splitlines():
            row = json.loads(line)
            key = (row['src'], row['dst'], row['proto'].lower(), row['dport'],
                   str(row['verdict']).lower())
            total = rows.setdefault(key, {'bytes': 0, 'packets': 0, 'connections': 0})
            for field in total:
                total[field] += row[field]
        return rows

    def start_servers(self):
        self.net.start_servers([SHORT_PORT], [])
        iperf_server = self.net.host('srv').popen(
            ['iperf3', '-s', '-p', str(IPERF_PORT)], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        self.servers.append(iperf_server)
        time.sleep(0.5)

    def short_connections(self):
        ok = self.in_host('cli', tiers.PYTHON, '-c', SHORT_CLIENT, self.net.vms['srv']['ip'],
                          str(SHORT_PORT), str(SHORT_CONNECTIONS))
        self.assertEqual(int(ok), SHORT_CONNECTIONS)

    def udp_test(self):
        """iperf3 UDP at 20 Mbit/s for 3 s; (payload bytes sent, datagrams
        sent, datagrams the server did not get)."""
        udp = self.iperf3('-u', '-b', '20M', '-l', '1200', '-t', '3')
        total = udp['end']['sum']
        return total['bytes'], total['packets'], total.get('lost_packets', 0)

    def stop_and_export(self):
        """Waits for every counting flow to idle out and report its
        remainder, stops augur (closing its last window), returns the rows."""
        gone = tiers.wait_until(lambda: not self.counting_flows(), timeout=30, interval=0.5)
        self.assertTrue(gone, 'counting flows did not expire: %s' % self.counting_flows())
        time.sleep(2.5)
        self.daemon.stop()
        rows = self.exported()
        print('  stored rows: %s' % json.dumps({'|'.join(map(str, k)): v
                                                for k, v in rows.items()}))
        return rows

    def check_udp(self, row, payload, datagrams, lost):
        """augur counts what the switch forwarded: at most what iperf3 sent,
        and at least what arrived (under load the userspace datapath drops
        datagrams, before its counters or after them)."""
        self.assertEqual(row['connections'], 1, row)
        sent = payload + UDP_HEADERS * datagrams
        arrived = sent * (datagrams - lost) / datagrams if datagrams else 0
        if arrived <= row['bytes'] <= sent:
            error = 0.0
        else:
            error = min(abs(row['bytes'] - sent), abs(row['bytes'] - arrived)) / sent
        print('  iperf3 UDP: %d payload bytes in %d datagrams, %d lost; augur: %d bytes in %d '
              'packets; expected %d to %d with headers; off by %.2f%%'
              % (payload, datagrams, lost, row['bytes'], row['packets'], arrived, sent,
                 100 * error))
        self.assertLess(error, 0.05)

    def test_traffic_is_recorded_with_its_volume(self):
        started = time.monotonic()
        self.start_augur('enforce', POLICY)
        srv_ip = self.net.vms['srv']['ip']
        self.start_servers()
        self.short_connections()
        passed = self.in_host('cli', tiers.PYTHON, '-c', DENIED_CLIENT, srv_ip,
                              str(DENIED_PORT), str(DENIED_ATTEMPTS))
        self.assertEqual(int(passed), 0, 'a denied connection passed')

        tcp = self.iperf3('-t', '5')
        tcp_payload = tcp['end']['sum_sent']['bytes']
        retransmits = tcp['end']['sum_sent'].get('retransmits', 0)
        udp_payload, udp_datagrams, udp_lost = self.udp_test()
        rows = self.stop_and_export()

        # Right ends, protocol and service port for everything recorded.
        expected_keys = {
            ('cli', 'srv', 'tcp', SHORT_PORT, 'allowed'),
            ('cli', 'srv', 'tcp', DENIED_PORT, 'denied'),
            ('cli', 'srv', 'tcp', IPERF_PORT, 'allowed'),
            ('cli', 'srv', 'udp', IPERF_PORT, 'allowed'),
        }
        self.assertEqual(set(rows), expected_keys, rows)

        short = rows[('cli', 'srv', 'tcp', SHORT_PORT, 'allowed')]
        self.assertEqual(short['connections'], SHORT_CONNECTIONS, short)
        denied = rows[('cli', 'srv', 'tcp', DENIED_PORT, 'denied')]
        self.assertEqual(denied['connections'], DENIED_ATTEMPTS, denied)

        # Control connections: one per iperf3 run, plus the TCP test's data
        # connection.
        tcp_row = rows[('cli', 'srv', 'tcp', IPERF_PORT, 'allowed')]
        self.assertEqual(tcp_row['connections'], 3, tcp_row)
        tcp_expected = tcp_payload + TCP_HEADERS * tcp_row['packets']
        tcp_error = abs(tcp_row['bytes'] - tcp_expected) / tcp_expected
        print('  iperf3 TCP: %d payload bytes (%d retransmits); augur: %d bytes in %d packets; '
              'expected %d with headers; off by %.2f%%'
              % (tcp_payload, retransmits, tcp_row['bytes'], tcp_row['packets'], tcp_expected,
                 100 * tcp_error))
        self.assertLess(tcp_error, 0.05)

        self.check_udp(rows[('cli', 'srv', 'udp', IPERF_PORT, 'allowed')],
                       udp_payload, udp_datagrams, udp_lost)
        print('  enforce-mode observer test took %.1f s' % (time.monotonic() - started))

    def test_learn_mode_records_what_no_rule_allows(self):
        started = time.monotonic()
        self.start_augur('learn', LEARN_POLICY)
        self.start_servers()
        self.short_connections()
        udp_payload, udp_datagrams, udp_lost = self.udp_test()
        rows = self.stop_and_export()
        self.assertEqual(set(rows), {
            ('cli', 'srv', 'tcp', SHORT_PORT, 'allowed'),
            ('cli', 'srv', 'tcp', IPERF_PORT, 'allowed'),
            ('cli', 'srv', 'udp', IPERF_PORT, 'allowed'),
        }, rows)
        short = rows[('cli', 'srv', 'tcp', SHORT_PORT, 'allowed')]
        self.assertEqual(short['connections'], SHORT_CONNECTIONS, short)
        self.assertEqual(rows[('cli', 'srv', 'tcp', IPERF_PORT, 'allowed')]['connections'], 1)
        self.check_udp(rows[('cli', 'srv', 'udp', IPERF_PORT, 'allowed')],
                       udp_payload, udp_datagrams, udp_lost)
        print('  learn-mode observer test took %.1f s' % (time.monotonic() - started))


if __name__ == '__main__':
    unittest.main()
