"""Two linked userspace switches with VM hosts in tiers, and an `augur run`
daemon controlling them, for the enforcement test.

Each switch is set up the way augur expects (userspace datapath, OpenFlow
1.3 and 1.4, fail_mode=secure, one out-of-band controller set before any flow
exists, because OVS flushes the table when a bridge gains its first
controller). The link between the switches is an external port (no vm-id) on
both. Each host's switch-side OVS Interface carries `external_ids:vm-id`, the
host's MAC as `attached-mac` (the veth's own MAC is not the guest's) and its
tier as an augur label.

Bridges are named uniquely per run ("am" + 6 hex digits + a/b; interface
names must fit in 15 characters), and stop() removes exactly what start()
made: the bridges, their interfaces, and the processes started in the hosts.
"""

import json
import os
import signal
import socket
import subprocess
import time

from mininet.log import setLogLevel
from mininet.net import Mininet
from mininet.node import OVSSwitch

from lib.probe import augur_binary

AUGUR_COOKIE = '0x6175000000000000/0xffff000000000000'
NETPROBE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'netprobe.py')
# The interpreter that runs netprobe inside the hosts (Debian's, as Mininet's).
PYTHON = '/usr/bin/python3'


def run(*args, check=True):
    """Runs a command; returns its stdout. Raises with its output on failure."""
    result = subprocess.run(args, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError('%s failed (%d): %s%s' % (
            ' '.join(args), result.returncode, result.stderr, result.stdout))
    return result.stdout


def unused_port():
    """A local TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class TieredNetwork:
    """Switches s1 and s2 (bridges `am<suffix>a` and `am<suffix>b`) linked
    through port 9 of each; `placement` maps switch index (0, 1) to a list
    of (vm name, tier) or (vm name, tier, address). Host k of the network
    gets 10.0.0.k/24 unless its address is given.

    VMs named in `unlabelled` get no OVSDB identity at start (their port is
    an unknown one, as before a hypervisor plugs a VM in); `label_vm()`
    gives it to them later.
    """

    UPLINK_PORT = 9

    def __init__(self, controller_port, placement, unlabelled=()):
        self.unlabelled = set(unlabelled)
        self.suffix = os.urandom(3).hex()
        self.bridges = ['am%sa' % self.suffix, 'am%sb' % self.suffix]
        self.controller_port = controller_port
        self.placement = placement
        self.net = None
        # vm name -> dict(ip, mac, bridge, port, tier)
        self.vms = {}
        self.servers = []

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        """Builds the network, labels the VM interfaces, then points both
        switches at the controller (before any flow exists)."""
        setLogLevel('warning')
        self.net = Mininet(switch=OVSSwitch, controller=None, build=False,
                           autoSetMacs=True, waitConnected=False)
        try:
            switches = []
            for index, bridge in enumerate(self.bridges):
                dpid = '0000%012x' % (int.from_bytes(os.urandom(6), 'big') | 1)
                switches.append(self.net.addSwitch(
                    bridge, datapath='user', failMode='secure',
                    protocols='OpenFlow13,OpenFlow14', dpid=dpid))
            number = 0
            for index, vms in enumerate(self.placement):
                for port, vm in enumerate(vms, start=1):
                    number += 1
                    name, tier = vm[0], vm[1]
                    ip = vm[2] if len(vm) > 2 else '10.0.0.%d' % number
                    self.net.addHost(name, ip='%s/24' % ip)
                    self.net.addLink(name, switches[index], port2=port)
                    self.vms[name] = {
                        'ip': ip, 'bridge': self.bridges[index],
                        'port': port, 'tier': tier,
                    }
            self.net.addLink(switches[0], switches[1],
                             port1=self.UPLINK_PORT, port2=self.UPLINK_PORT)
            self.net.build()
            self.net.start()
            for name, vm in self.vms.items():
                host = self.net.get(name)
                # TCP over the userspace datapath hangs with checksum offload.
                host.cmd('ethtool -K %s tx off' % host.defaultIntf())
                vm['mac'] = host.MAC()
                if name not in self.unlabelled:
                    self.label_vm(name)
            for bridge in self.bridges:
                run('ovs-vsctl', '--timeout=20',
                    '--', '--id=@controller', 'create', 'Controller',
                    'target="tcp:127.0.0.1:%d"' % self.controller_port,
                    'connection_mode=out-of-band',
                    '--', 'set', 'bridge', bridge, 'controller=@controller')
        except BaseException:
            self.stop()
            raise

    def stop(self):
        """Ends the echo servers, stops Mininet and removes this network's
        bridges and interfaces by name, even if Mininet's own stop failed."""
        for server in self.servers:
            if server.poll() is None:
                server.kill()
            server.wait()
        self.servers = []
        net, self.net = self.net, None
        try:
            if net is not None:
                net.stop()
        finally:
            for bridge in self.bridges:
                run('ovs-vsctl', '--timeout=20', '--if-exists', 'del-br', bridge, check=False)
                for port in list(range(1, 10)) + [self.UPLINK_PORT]:
                    intf = '%s-eth%d' % (bridge, port)
                    if os.path.exists('/sys/class/net/' + intf):
                        run('ip', 'link', 'del', intf, check=False)

    def label_vm(self, name):
        """Gives VM `name`'s switch-side interface its identity in OVSDB:
        `vm-id`, the guest's MAC as `attached-mac`, its tier label."""
        vm = self.vms[name]
        intf = '%s-eth%d' % (vm['bridge'], vm['port'])
        run('ovs-vsctl', '--timeout=20', 'set', 'Interface', intf,
            'external_ids:vm-id=%s' % name,
            'external_ids:attached-mac="%s"' % vm['mac'],
            'external_ids:augur-label-tier=%s' % vm['tier'])

    def write_augur_config(self, workdir, extra='', log_level='info,augur::daemon::bridge=debug'):
        """Writes `augur.toml` into `workdir` for this network: policy file
        `policy.toml` beside it, the inventory live from the system OVSDB
        restricted to this network's bridges with the hosts' addresses, and
        a listener on the controller port, logging at `log_level`, then
        `extra` (more sections).
        Returns its path."""
        vms = ''.join('[inventory.vms.%s]\nips = ["%s"]\n\n' % (name, vm['ip'])
                      for name, vm in self.vms.items())
        config = f"""policy = "policy.toml"
reload_interval = "300ms"

[inventory]
ovsdb = "unix:/var/run/openvswitch/db.sock"
bridges = [{', '.join('"%s"' % b for b in self.bridges)}]

{vms}
[listen]
tcp = ["127.0.0.1:{self.controller_port}"]

[openflow]
echo_interval = "2s"
echo_timeout = "4s"

[ovsdb]
target = "unix:/var/run/openvswitch/db.sock"

[logging]
format = "human"
level = "{log_level}"

[metrics]
enabled = false
""" + extra
        path = os.path.join(workdir, 'augur.toml')
        with open(path, 'w') as f:
            f.write(config)
        return path

    def host(self, name):
        """The Mininet host of VM `name`."""
        return self.net.get(name)

    def start_servers(self, tcp_ports, udp_ports, only=None):
        """An echo server on every host (or on the hosts in `only`), on
        every port the test probes."""
        for name in self.vms:
            if only is not None and name not in only:
                continue
            server = self.host(name).popen(
                [PYTHON, NETPROBE, 'serve', ','.join(map(str, tcp_ports)),
                 ','.join(map(str, udp_ports))],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            self.servers.append(server)
            line = server.stdout.readline()
            if line.strip() != 'listening':
                raise RuntimeError('echo server on %s: %r' % (name, line))

    def probe(self, source, targets, timeout=1.0):
        """{target: result} for PROTO:IP:PORT targets tried at once from `source`."""
        out = self.host(source).cmd(
            PYTHON, NETPROBE, 'probe', str(timeout), *targets)
        return json.loads(out.strip().splitlines()[-1])

    def popen(self, source, *args):
        """netprobe ARGS in host `source`, with pipes."""
        return self.host(source).popen(
            [PYTHON, NETPROBE] + list(args), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def ofctl(self, bridge, command, *args):
        """`ovs-ofctl -O OpenFlow14 COMMAND BRIDGE ARGS...`; returns stdout."""
        return run('ovs-ofctl', '-O', 'OpenFlow14', command, bridge, *args)

    def augur_flows(self, bridge):
        """augur's flows on `bridge`, without counters or durations, sorted."""
        out = self.ofctl(bridge, 'dump-flows', '--no-stats', 'cookie=' + AUGUR_COOKIE)
        return sorted(line.strip() for line in out.splitlines() if 'cookie=' in line)

    def all_flows(self, bridge):
        """Every flow on `bridge`, augur's or not, without statistics."""
        out = self.ofctl(bridge, 'dump-flows', '--no-stats')
        return sorted(line.strip() for line in out.splitlines() if 'priority' in line)


class AugurDaemon:
    """`augur run --config FILE`, its stderr collected in a file."""

    def __init__(self, config, log_path):
        self.config = config
        self.log_path = log_path
        self.process = None

    def start(self):
        """Starts the daemon; its output is appended to the log file."""
        log = open(self.log_path, 'a')
        self.process = subprocess.Popen(
            [augur_binary(), 'run', '--config', self.config],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def kill(self):
        """SIGKILL: no chance to clean up, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self):
        """SIGTERM, as an operator stops it; SIGKILL if it lingers."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def alive(self):
        """Whether the daemon is still running."""
        return self.process is not None and self.process.poll() is None

    def log(self):
        """Everything the daemon printed so far, over all its runs."""
        with open(self.log_path) as f:
            return f.read()


def wait_until(predicate, timeout, interval=0.1):
    """Polls `predicate` until true; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)
