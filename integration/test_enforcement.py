"""Enforcement end to end: `augur run` controlling two linked userspace
switches with six VM hosts in three tiers, checked with real traffic.

One test, in phases that build on each other (each needs the state the last
left; a failure names its phase):

1. initial policy: every allowed connection (TCP connect plus echo, UDP
   request and answer) succeeds, every other VM pair and port times out,
   including the reverse direction of every allowed rule;
2. policy file changed (one rule added, one removed): the new rule admits
   within seconds, the removed one admits no new connection, and TCP
   connections opened before the change (under the kept rule and under the
   removed one) keep working;
3. augur killed with SIGKILL: enforcement unchanged while it is down;
   restarted: a denied connection attempted in a loop all through the
   restart never passes, and once settled each switch holds exactly the
   flows it held before the kill (augur's cookie, no counters);
4. throughout: a flow with a foreign cookie, added with ovs-ofctl, is never
   touched.
"""

import json
import os
import shutil
import tempfile
import time
import unittest

from lib.env import require_environment

# Imported after the environment check (they import mininet).
tiers = None

PLACEMENT = [
    [('web1', 'web'), ('web2', 'web'), ('app1', 'app')],
    [('app2', 'app'), ('db1', 'db'), ('db2', 'db')],
]
TCP_PORTS = [8080, 5432, 9000]
UDP_PORTS = [5353, 9000]
FOREIGN_FLOW = 'cookie=0xf00d0001,table=0,priority=1,dl_type=0x88b5,actions=drop'

GROUPS = """
[groups.web]
labels = { tier = "web" }

[groups.app]
labels = { tier = "app" }

[groups.db]
labels = { tier = "db" }

[groups.front]
vms = ["web1"]

[groups.reports]
vms = ["db2"]
"""

RULE_WEB_APP = """
[[allow]]
name = "web calls the application tier"
from = "web"
to = "app"
proto = "tcp"
port = 8080
"""
RULE_APP_DB_TCP = """
[[allow]]
name = "application queries the databases"
from = "app"
to = "db"
proto = "tcp"
port = 5432
"""
RULE_APP_DB_UDP = """
[[allow]]
name = "application resolves names"
from = "app"
to = "db"
proto = "udp"
port = 5353
"""
RULE_FRONT_REPORTS = """
[[allow]]
name = "web1 fetches reports from db2 (by VM id, across the switches)"
from = "front"
to = "reports"
proto = "tcp"
port = 9000
"""
RULE_APP_WEB = """
[[allow]]
name = "application pushes to the web tier"
from = "app"
to = "web"
proto = "udp"
port = 9000
"""

# (from tier or vm, to tier or vm, proto, port) as the rules above allow.
ALLOW_WEB_APP = ('web', 'app', 'tcp', 8080)
ALLOW_APP_DB_TCP = ('app', 'db', 'tcp', 5432)
ALLOW_APP_DB_UDP = ('app', 'db', 'udp', 5353)
ALLOW_FRONT_REPORTS = ('web1', 'db2', 'tcp', 9000)
ALLOW_APP_WEB = ('app', 'web', 'udp', 9000)

POLICY_1 = (GROUPS + RULE_WEB_APP + RULE_APP_DB_TCP + RULE_APP_DB_UDP + RULE_FRONT_REPORTS,
            [ALLOW_WEB_APP, ALLOW_APP_DB_TCP, ALLOW_APP_DB_UDP, ALLOW_FRONT_REPORTS])
# Rule app->db tcp 5432 removed, app->web udp 9000 added.
POLICY_2 = (GROUPS + RULE_WEB_APP + RULE_APP_DB_UDP + RULE_FRONT_REPORTS + RULE_APP_WEB,
            [ALLOW_WEB_APP, ALLOW_APP_DB_UDP, ALLOW_FRONT_REPORTS, ALLOW_APP_WEB])


def _selects(selector, name, tier):
    return selector in (name, tier)


class EnforcementTest(unittest.TestCase):

    def setUp(self):
        require_environment()
        global tiers
        from lib import tiers as module
        tiers = module
        self.workdir = tempfile.mkdtemp(prefix='augur-enforcement-')
        self.addCleanup(shutil.rmtree, self.workdir, ignore_errors=True)
        self.controller_port = tiers.unused_port()
        self.net = tiers.TieredNetwork(self.controller_port, PLACEMENT)
        self.daemon = None
        self.holders = []
        self.net.start()
        self.addCleanup(self._cleanup)

    def _cleanup(self):
        for holder in self.holders:
            if holder.poll() is None:
                holder.kill()
            holder.wait()
        if self.daemon is not None:
            self.daemon.stop()
        self.net.stop()

    # Setup of the controller.

    def write_policy(self, policy):
        path = os.path.join(self.workdir, 'policy.toml')
        # Written whole and renamed, so the daemon never reads half a file.
        with open(path + '.new', 'w') as f:
            f.write(policy[0])
        os.replace(path + '.new', path)

    def write_config(self):
        return self.net.write_augur_config(self.workdir)

    def settled_since(self, offset):
        """Whether, in the log after `offset`, every bridge reported holding
        the desired flows or applying them."""
        log = self.daemon.log()[offset:]
        for bridge in self.net.bridges:
            if not any(bridge in line and ('holds the desired flows' in line
                                           or 'applied policy version' in line)
                       for line in log.splitlines()):
                return False
        return True

    def wait_settled(self, offset, what):
        ok = tiers.wait_until(lambda: self.settled_since(offset), timeout=30)
        self.assertTrue(ok, '%s: augur did not settle; log:\n%s' % (what, self.daemon.log()[-4000:]))

    # Traffic.

    def expected(self, policy, src, dst, proto, port):
        if src == dst:
            return False
        s, d = self.net.vms[src], self.net.vms[dst]
        return any(_selects(f, src, s['tier']) and _selects(t, dst, d['tier'])
                   and proto == p and port == q for f, t, p, q in policy[1])

    def matrix(self):
        """(src, target, dst) for every ordered VM pair and probed port."""
        for src in self.net.vms:
            for dst, vm in self.net.vms.items():
                if src == dst:
                    continue
                for proto, ports in (('tcp', TCP_PORTS), ('udp', UDP_PORTS)):
                    for port in ports:
                        yield src, '%s:%s:%d' % (proto, vm['ip'], port), dst

    def check_matrix(self, policy, phase):
        """Tries every pair and port; asserts each outcome against `policy`."""
        by_source = {}
        for src, target, dst in self.matrix():
            by_source.setdefault(src, []).append((target, dst))
        wrong = []
        allowed = denied = 0
        for src, targets in by_source.items():
            results = self.net.probe(src, [t for t, _ in targets], timeout=1.5)
            for target, dst in targets:
                proto, _, port = target.split(':')
                should = self.expected(policy, src, dst, proto, int(port))
                got = results[target]
                if should:
                    allowed += 1
                    if got != 'ok':
                        wrong.append('%s -> %s %s: allowed but %s' % (src, dst, target, got))
                else:
                    denied += 1
                    if got != 'timeout':
                        wrong.append('%s -> %s %s: denied but %s' % (src, dst, target, got))
        self.assertEqual(wrong, [], '%s: %d of %d probes wrong' % (phase, len(wrong), allowed + denied))
        self.assertGreater(allowed, 0)
        print('  %s: %d allowed and %d denied probes as expected' % (phase, allowed, denied))

    def hold(self, src, dst, port):
        holder = self.net.popen(src, 'hold', self.net.vms[dst]['ip'], str(port))
        self.holders.append(holder)
        self.assertEqual(holder.stdout.readline().strip(), 'connected')
        return holder

    def exchange(self, holder, line):
        holder.stdin.write(line + '\n')
        holder.stdin.flush()
        return holder.stdout.readline().strip()

    def foreign_flows_intact(self, phase):
        for bridge in self.net.bridges:
            flows = self.net.all_flows(bridge)
            self.assertTrue(any('cookie=0xf00d0001' in f and 'dl_type=0x88b5' in f for f in flows),
                            '%s: the foreign flow is gone from %s: %s' % (phase, bridge, flows))

    # The test.

    def test_policy_enforced_across_changes_and_restart(self):
        started = time.monotonic()
        net = self.net
        # Foreign flows go in before augur starts; the controllers are set
        # already, so OVS will not flush them.
        for bridge in net.bridges:
            net.ofctl(bridge, 'add-flow', FOREIGN_FLOW)
        self.write_policy(POLICY_1)
        config = self.write_config()
        self.daemon = tiers.AugurDaemon(config, os.path.join(self.workdir, 'augur.log'))
        self.daemon.start()
        self.wait_settled(0, 'start')
        for bridge in net.bridges:
            self.assertTrue(net.augur_flows(bridge), 'no augur flow on %s' % bridge)
            fail_mode = tiers.run('ovs-vsctl', 'get', 'Bridge', bridge, 'fail_mode').strip()
            self.assertEqual(fail_mode, 'secure')
        net.start_servers(TCP_PORTS, UDP_PORTS)

        # 1. The initial policy.
        self.check_matrix(POLICY_1, 'policy 1')
        self.foreign_flows_intact('policy 1')

        # 2. The policy changes under established connections.
        kept = self.hold('web1', 'app2', 8080)       # its rule stays
        orphan = self.hold('app1', 'db1', 5432)      # its rule goes
        self.assertEqual(self.exchange(kept, 'before'), 'ok')
        self.assertEqual(self.exchange(orphan, 'before'), 'ok')
        offset = len(self.daemon.log())
        changed_at = time.monotonic()
        self.write_policy(POLICY_2)
        new_rule = 'udp:%s:9000' % net.vms['web2']['ip']
        admitted = tiers.wait_until(
            lambda: net.probe('app2', [new_rule], timeout=0.5)[new_rule] == 'ok', timeout=10)
        took = time.monotonic() - changed_at
        self.assertTrue(admitted, 'the added rule did not admit within 10 s; log:\n%s'
                        % self.daemon.log()[offset:])
        print('  the added rule admitted %.1f s after the file changed' % took)
        self.wait_settled(offset, 'policy 2')
        self.assertEqual(self.exchange(kept, 'after change'), 'ok')
        self.assertEqual(self.exchange(orphan, 'after change'), 'ok')
        self.check_matrix(POLICY_2, 'policy 2')
        self.foreign_flows_intact('policy 2')

        # 3. SIGKILL, then a restart.
        before = {bridge: net.augur_flows(bridge) for bridge in net.bridges}
        self.daemon.kill()
        self.check_matrix(POLICY_2, 'augur down')
        self.assertEqual(self.exchange(kept, 'while down'), 'ok')
        # Denied attempts all through the restart: from an app VM to a
        # database on the rule that was removed, and from web2 to db2 on the
        # port web1 alone may use.
        loops = [
            net.popen('app1', 'deny-loop', '12', '0.3', 'tcp:%s:5432' % net.vms['db2']['ip']),
            net.popen('web2', 'deny-loop', '12', '0.3', 'tcp:%s:9000' % net.vms['db2']['ip']),
        ]
        self.holders.extend(loops)
        time.sleep(1)
        offset = len(self.daemon.log())
        self.daemon.start()
        self.wait_settled(offset, 'restart')
        # The version is derived from the policy's content: a restarted augur
        # recognises its flows and changes nothing.
        restart_log = self.daemon.log()[offset:]
        self.assertNotIn('applied policy version', restart_log)
        after = {bridge: net.augur_flows(bridge) for bridge in net.bridges}
        for bridge in net.bridges:
            self.assertEqual(after[bridge], before[bridge],
                             '%s: flows after the restart differ from before the kill' % bridge)
            print('  %s: %d augur flows, identical before the kill and after the restart'
                  % (bridge, len(after[bridge])))
        for loop in loops:
            out, _ = loop.communicate(timeout=30)
            counts = json.loads(out.strip().splitlines()[-1])
            self.assertGreater(counts['attempts'], 10, out)
            self.assertEqual(counts['successes'], 0,
                             'a denied connection passed during the restart: %s' % out)
            print('  denied attempts during the restart: %d, passed: 0' % counts['attempts'])
        self.assertEqual(self.exchange(kept, 'after restart'), 'ok')
        self.assertEqual(self.exchange(orphan, 'after restart'), 'ok')
        self.check_matrix(POLICY_2, 'after restart')

        # 4. The foreign flow survived all of it.
        self.foreign_flows_intact('end')
        self.assertTrue(self.daemon.alive(), self.daemon.log()[-2000:])
        print('  enforcement test took %.1f s' % (time.monotonic() - started))


if __name__ == '__main__':
    unittest.main()
