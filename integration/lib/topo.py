"""One userspace Open vSwitch switch and a few hosts, built with Mininet the
way augur expects switches to be set up.

The switch uses the userspace datapath (no kernel module needed), speaks
OpenFlow 1.3 and 1.4, fails secure (nothing fails open while the controller is
away) and has one out-of-band controller at tcp:127.0.0.1:PORT. The controller
is set before any flow is installed: OVS flushes the flow table when a bridge
gains its first controller.

Everything made here is named uniquely ("aug" + 7 hex digits for the bridge;
its interfaces are "<bridge>-ethN") and removed by name on stop, so runs can
overlap with each other and with other users of the machine. Never `mn -c`: it
deletes every bridge on the machine.
"""

import os
import subprocess
import time

from mininet.log import setLogLevel
from mininet.net import Mininet
from mininet.node import OVSSwitch


def _run(*args, check=True):
    """Runs a command; returns its stdout. Raises with its output on failure."""
    result = subprocess.run(args, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError('%s failed (%d): %s%s' % (
            ' '.join(args), result.returncode, result.stderr, result.stdout))
    return result.stdout


class AugurTopology:
    """A switch with `hosts` hosts (h1..hN, 10.0.0.N/24, MACs 00:..:0N),
    port N of the switch leading to hN.

    Use as a context manager, or call start() and stop().
    """

    def __init__(self, controller_port, hosts=3, dpid=None):
        suffix = os.urandom(4).hex()[:7]
        self.bridge = 'aug' + suffix
        # 48 random bits, never zero, as 16 hex digits (what OVS prints).
        self.dpid = dpid or '0000%012x' % (int.from_bytes(os.urandom(6), 'big') | 1)
        self.controller_port = controller_port
        self.host_count = hosts
        self.net = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        """Builds and starts the network, then points the switch at the
        controller."""
        setLogLevel('warning')
        # No Mininet controller: Mininet would configure in-band mode; the
        # controller is set below, out of band.
        self.net = Mininet(switch=OVSSwitch, controller=None, build=False,
                           autoSetMacs=True, waitConnected=False)
        try:
            switch = self.net.addSwitch(
                self.bridge, datapath='user', failMode='secure',
                protocols='OpenFlow13,OpenFlow14', dpid=self.dpid)
            for i in range(1, self.host_count + 1):
                host = self.net.addHost('h%d' % i, ip='10.0.0.%d/24' % i)
                self.net.addLink(host, switch, port2=i)
            self.net.build()
            self.net.start()
            for host in self.hosts:
                # TCP over the userspace datapath hangs with checksum offload.
                host.cmd('ethtool -K %s tx off' % host.defaultIntf())
            _run('ovs-vsctl', '--timeout=20',
                 '--', '--id=@controller', 'create', 'Controller',
                 'target="tcp:127.0.0.1:%d"' % self.controller_port,
                 'connection_mode=out-of-band',
                 '--', 'set', 'bridge', self.bridge, 'controller=@controller')
        except BaseException:
            self.stop()
            raise

    def stop(self):
        """Stops Mininet's hosts and removes this topology's bridge and
        interfaces, by name, even if Mininet's own stop failed."""
        net, self.net = self.net, None
        try:
            if net is not None:
                net.stop()
        finally:
            _run('ovs-vsctl', '--timeout=20', '--if-exists', 'del-br', self.bridge,
                 check=False)
            for i in range(1, self.host_count + 1):
                intf = '%s-eth%d' % (self.bridge, i)
                if os.path.exists('/sys/class/net/' + intf):
                    _run('ip', 'link', 'del', intf, check=False)
            if os.path.exists('/sys/class/net/' + self.bridge):
                _run('ip', 'link', 'del', self.bridge, check=False)

    @property
    def hosts(self):
        """The Mininet hosts, h1 first."""
        return [self.net.get('h%d' % i) for i in range(1, self.host_count + 1)]

    def host(self, number):
        """Host hN."""
        return self.net.get('h%d' % number)

    def exists(self):
        """Whether the bridge is in OVSDB."""
        return subprocess.run(['ovs-vsctl', 'br-exists', self.bridge]).returncode == 0

    def ofctl(self, command, *args):
        """`ovs-ofctl -O OpenFlow14 COMMAND BRIDGE ARGS...`; returns stdout."""
        return _run('ovs-ofctl', '-O', 'OpenFlow14', command, self.bridge, *args)

    def add_flow(self, flow):
        """Installs one flow, in ovs-ofctl syntax."""
        self.ofctl('add-flow', flow)

    def dump_flows(self):
        """The flow table as ovs-ofctl prints it, without statistics."""
        return self.ofctl('dump-flows', '--no-stats')

    def controller_connected(self):
        """Whether OVS reports its controller connection as up."""
        uuid = _run('ovs-vsctl', '--timeout=20', 'get', 'bridge', self.bridge,
                    'controller').strip().strip('[]')
        return _run('ovs-vsctl', '--timeout=20', 'get', 'controller', uuid,
                    'is_connected').strip() == 'true'

    def wait_connected(self, timeout=10.0):
        """Waits for the controller connection; returns whether it came up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.controller_connected():
                return True
            time.sleep(0.1)
        return False
