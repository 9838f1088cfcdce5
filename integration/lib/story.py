"""The closed loop on Mininet, as one story shared by the end-to-end test
(which asserts every step) and the demo (which narrates it).

A generated scenario's first 3 days and 10 hours are augur's history
(lib/scenario.py); its thirteen VMs are Mininet hosts on two userspace
switches; `augur run` enforces the operator's starting policy with the
decision loop on (`[orchestrate] enabled`), and the story goes on live:

1. augur applies its low-risk openings by itself (monitoring, name
   service, time), and a monitoring scrape no rule of the starting policy
   allows succeeds at its first packet;
2. web-3, a VM the history never saw, is plugged in (its identity written
   into OVSDB): the label rules augur made for its tier (every web VM used
   the same name and time servers) cover it as it appears, before it sends
   anything, and its first name lookup is answered;
3. the application's database access is sensitive (PostgreSQL): augur
   queues it in OVSDB, the connection is refused until an operator
   approves it with `ovs-vsctl`, then succeeds;
4. `augur rollback --change N` blocks it again;
5. the replication link's 10 Mbit/s limit is too small for the volume the
   history shows; augur queues a raise computed from that volume; iperf3
   measures the old limit holding, then the new one after approval;
6. web-2 is compromised and scans the network: nothing gets through,
   nothing is opened for it, and no change is undone because of its scan.

Every step returns what it measured, so that the test can assert it and
the demo can print it.
"""

import json
import os
import re
import subprocess
import time

from lib.probe import augur_binary
from lib.scenario import BASE_POLICY, WINDOW_S, ScenarioHistory

# Imported by Story.__init__ (it imports mininet).
tiers = None

SYSTEM_DB = 'unix:/var/run/openvswitch/db.sock'
SEED = 3
# Thursday 10:00 of the scenario's first week: working hours.
CUT_DAYS = 3 + 10 / 24
NEW_VM = 'web-3'
SCANNER = 'web-2'
# The ports the scenario's compromised VM scans (its generator's
# SCANNED_PORTS).
SCANNED_PORTS = [22, 23, 135, 139, 445, 3306, 3389, 5432, 5985, 6379]
# Echo servers: every port the story probes, and every port the scanner
# tries (so that anything let through would answer). db-2's 5432 is
# iperf3's.
TCP_PORTS = sorted(set([443, 8080, 9100, 873] + SCANNED_PORTS))
UDP_PORTS = [53, 123]
IPERF_PORT = 5432
# A probe must succeed within this: under the first retransmission of a
# SYN (1 s), so "ok" means the first packet passed.
FIRST_PACKET = 0.9
# The decision loop's settings for the story: a short cycle.
ORCHESTRATE = """
[observer]
store = "{store}"
poll_interval = "1s"

[orchestrate]
enabled = true
cycle = "2s"
"""


def ovs_vsctl(*args):
    """`ovs-vsctl` on the system database; its stdout."""
    result = subprocess.run(('ovs-vsctl', '--timeout=20') + args,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError('ovs-vsctl %s: %s' % (' '.join(args), result.stderr))
    return result.stdout.strip()


def root_external_ids():
    """The Open_vSwitch root row's external_ids, as a dict."""
    out = ovs_vsctl('--format=json', '--columns=external_ids', 'list', 'Open_vSwitch')
    rows = json.loads(out)['data']
    return dict(rows[0][0][1]) if rows else {}


def clear_augur_keys():
    """Removes every augur-* key of the root row (an earlier run's)."""
    for key in root_external_ids():
        if key.startswith('augur-'):
            ovs_vsctl('remove', 'Open_vSwitch', '.', 'external_ids', key)


def covers(rule, src, dst, proto, port, tiers_of):
    """Whether a version's rule (RuleData JSON) admits src -> dst proto/port."""
    def selects(names, vm):
        return any(n in ('vm:' + vm, 'label:tier=' + tiers_of.get(vm, '?')) for n in names)
    ports = rule.get('ports')
    return (selects(rule['from'], src) and selects(rule['to'], dst) and rule['proto'] == proto
            and (ports is None or ports[0] <= port <= ports[1]))


class StoryFailure(AssertionError):
    """A step of the story did not happen as it should."""


class Story:
    """The network, the history, the daemon and the steps. `say` receives
    narration lines."""

    def __init__(self, say=print, operator='the e2e test'):
        global tiers
        from lib import tiers as tiers_module
        tiers = tiers_module
        self.say = say
        self.operator = operator
        self.workdir = None
        self.net = None
        self.daemon = None
        self.history = None
        self.servers = []
        self.store = None
        self.config = None

    # -- set-up and teardown ------------------------------------------------

    def start(self, workdir):
        """History, network, servers, daemon; returns once augur enforces."""
        self.workdir = workdir
        self.store = os.path.join(workdir, 'history')
        clear_augur_keys()
        self.history = ScenarioHistory(workdir, SEED, CUT_DAYS, self.store)
        self.say(self.history.prepare())
        self.net = tiers.TieredNetwork(tiers.unused_port(), self.history.placement(),
                                       unlabelled=[NEW_VM])
        self.net.start()
        with open(os.path.join(workdir, 'policy.toml'), 'w') as f:
            f.write(BASE_POLICY)
        self.config = self.net.write_augur_config(
            workdir, ORCHESTRATE.format(store=self.store),
            log_level='info,augur::orchestrate=debug')
        echo = [n for n in self.net.vms if n != 'db-2']
        self.net.start_servers(TCP_PORTS, UDP_PORTS, only=echo)
        self.net.start_servers([p for p in TCP_PORTS if p != IPERF_PORT], UDP_PORTS,
                               only=['db-2'])
        iperf = self.net.host('db-2').popen(['iperf3', '-s', '-p', str(IPERF_PORT)],
                                            stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL)
        self.net.servers.append(iperf)
        self.daemon = tiers.AugurDaemon(self.config, os.path.join(workdir, 'augur.log'))
        started = time.monotonic()
        self.daemon.start()
        settled = tiers.wait_until(
            lambda: all(any(b in l and ('holds the desired flows' in l
                                        or 'applied policy version' in l)
                            for l in self.daemon.log().splitlines())
                        for b in self.net.bridges), timeout=60)
        if not settled:
            raise StoryFailure('augur did not install the policy:\n' + self.daemon.log()[-4000:])
        self.say('augur enforces the starting policy on %s (%.1f s)'
                 % (' and '.join(self.net.bridges), time.monotonic() - started))

    def stop(self):
        """Stops the daemon and the network; clears augur's OVSDB keys."""
        try:
            if self.daemon is not None:
                self.daemon.stop()
        finally:
            try:
                if self.net is not None:
                    self.net.stop()
            finally:
                clear_augur_keys()

    # -- what augur says ----------------------------------------------------

    def versions(self):
        """`augur history --json`: every version, oldest first."""
        out = subprocess.run([augur_binary(), 'history', '--store', self.store, '--json'],
                             capture_output=True, text=True)
        if out.returncode != 0:
            return []
        return json.loads(out.stdout or '[]')

    def pending(self):
        """`augur pending --json`: the entries of the pending table."""
        out = subprocess.run([augur_binary(), 'pending', '--db', SYSTEM_DB, '--json'],
                             capture_output=True, text=True, check=True)
        return json.loads(out.stdout or '[]')

    def in_force_covering(self, src, dst, proto, port, decider=None):
        """The versions in force whose added rules admit the key (and whose
        decider `decider` accepts)."""
        return [v for v in self.versions()
                if v['status']['state'] == 'applied'
                and (decider is None or decider(v['decider']))
                and any(covers(r['rule'], src, dst, proto, port, self.history.tiers)
                        for r in v.get('added', []))]

    def wait_for(self, what, predicate, timeout=120, interval=0.5):
        """Polls `predicate` until it returns something true; raises with
        the daemon's log if it never does."""
        value = tiers.wait_until(predicate, timeout=timeout, interval=interval)
        if not value:
            raise StoryFailure('%s: not within %d s\n%s' % (what, timeout,
                                                           self.daemon.log()[-6000:]))
        return value

    # -- traffic ------------------------------------------------------------

    def probe(self, src, *targets, timeout=FIRST_PACKET):
        """{(proto, dst, port): result} of one attempt each, at once."""
        text = ['%s:%s:%d' % (proto, self.net.vms[dst]['ip'], port)
                for proto, dst, port in targets]
        results = self.net.probe(src, text, timeout=timeout)
        return {t: results[x] for t, x in zip(targets, text)}

    def iperf(self, src, dst, seconds=4):
        """iperf3 TCP src -> dst for `seconds` after a first second left out
        (slow start, and the meter's burst allowance, which a full bucket
        lets through at once); goodput received, bit/s."""
        out = self.net.host(src).cmd('iperf3', '-c', self.net.vms[dst]['ip'], '-p',
                                     str(IPERF_PORT), '-O', '1', '-t', str(seconds), '-J')
        report = json.loads(out[out.index('{'):])
        return report['end']['sum_received']['bits_per_second']

    # -- the steps ----------------------------------------------------------

    def step_low_risk_before_first_packet(self):
        """augur opens mon-1's scrape of web-1 by itself (it worked all
        through the history; the starting policy lacks it); the scrape
        then succeeds at its first packet. A key nobody used stays shut."""
        automatic = lambda d: d == 'automatic'  # noqa: E731
        started = time.monotonic()
        versions = self.wait_for(
            'an automatic opening of mon-1 -> web-1 tcp/9100',
            lambda: self.in_force_covering('mon-1', 'web-1', 'tcp', 9100, automatic))
        waited = time.monotonic() - started
        applied = [v for v in self.versions()
                   if v['decider'] == 'automatic' and v['status']['state'] == 'applied']
        result = self.probe('mon-1', ('tcp', 'web-1', 9100), ('tcp', 'web-1', 5432))
        return {
            'version': versions[0],
            'automatic': applied,
            'waited_s': waited,
            'scrape': result[('tcp', 'web-1', 9100)],
            'unused': result[('tcp', 'web-1', 5432)],
        }

    def step_new_vm(self):
        """web-3 is plugged in: what augur opened for its tier covers it
        before it sends anything; its first lookups are answered.

        "Plugged in" ends when both switches hold the flows augur compiled
        for the new inventory (a hypervisor writes the interface's identity
        before the guest boots; the VM's port is unknown to the switch
        until then)."""
        before = len(self.versions())
        mark = len(self.daemon.log())
        plugged = time.monotonic()
        self.net.label_vm(NEW_VM)
        vms = 'vms=%d' % len(self.net.vms)

        def installed():
            log = re.sub(r'\x1b\[[0-9;]*m', '', self.daemon.log()[mark:])
            updated = [i for i, line in enumerate(log.splitlines())
                       if 'inventory updated' in line and vms in line]
            if not updated:
                return False
            after = log.splitlines()[updated[-1]:]
            return all(any('applied policy version' in line and bridge in line
                           for line in after) for bridge in self.net.bridges)

        self.wait_for('both switches hold the flows for web-3', installed, interval=0.05)
        installed_s = time.monotonic() - plugged
        versions = self.in_force_covering(NEW_VM, 'dns-1', 'udp', 53)
        result = self.probe(NEW_VM, ('udp', 'dns-1', 53), ('udp', 'ntp-1', 123),
                            ('tcp', 'app-1', 8080))
        return {
            'versions': versions,
            'new_versions': len(self.versions()) - before,
            'installed_s': installed_s,
            'results': result,
        }

    def find_pending(self, wanted):
        """The first pending entry whose change (one line) `wanted` accepts."""
        for listed in self.pending():
            entry = listed.get('entry')
            if entry and wanted(entry['summary']['change']):
                return listed
        return None

    def approve(self, entry_id):
        """The README's approval, with plain ovs-vsctl; returns the change
        number once augur reports it applied, and the latency."""
        command = ['ovs-vsctl', 'set', 'Open_vSwitch', '.',
                   'external_ids:augur-decision-%s="approve by %s"' % (entry_id, self.operator)]
        self.say('$ ' + ' '.join(command))
        started = time.monotonic()
        ovs_vsctl(*command[1:])
        status = self.wait_for(
            'the status of the approved entry %s' % entry_id,
            lambda: root_external_ids().get('augur-status-' + entry_id), timeout=60,
            interval=0.02)
        latency = time.monotonic() - started
        match = re.match(r'applied as change (\d+) ', status)
        if not match:
            raise StoryFailure('approval of %s: status %r' % (entry_id, status))
        return int(match.group(1)), latency, status

    def step_review(self):
        """app-1's PostgreSQL access waits for an operator; refused until
        approved with ovs-vsctl, then it works."""
        entry = self.wait_for(
            'a pending opening of app-1 -> db 5432/tcp',
            lambda: self.find_pending(lambda change: '5432/tcp' in change and 'limit' not in change
                                      and ('vm:app-1 ' in change or 'tier=app ' in change)))
        before = self.probe('app-1', ('tcp', 'db-1', 5432))[('tcp', 'db-1', 5432)]
        change, latency, status = self.approve(entry['id'])
        after = self.probe('app-1', ('tcp', 'db-1', 5432))[('tcp', 'db-1', 5432)]
        return {'entry': entry, 'before': before, 'change': change,
                'latency_s': latency, 'status': status, 'after': after}

    def step_rollback(self, change, reason='end-to-end test'):
        """`augur rollback --change N` undoes the approved change; the
        connection is refused again."""
        command = [augur_binary(), 'rollback', '--change', str(change), '--db', SYSTEM_DB,
                   '--reason', reason]
        self.say('$ augur rollback --change %d --reason "%s"' % (change, reason))
        started = time.monotonic()
        out = subprocess.run(command, capture_output=True, text=True)
        if out.returncode != 0:
            raise StoryFailure('augur rollback: %s%s' % (out.stdout, out.stderr))
        latency = time.monotonic() - started
        # New connections are refused once the flows are gone; give the
        # bridges the time of a bundle.
        result = self.wait_for(
            'app-1 -> db-1 5432/tcp refused again',
            lambda: (lambda r: r if r != 'ok' else None)(
                self.probe('app-1', ('tcp', 'db-1', 5432))[('tcp', 'db-1', 5432)]),
            timeout=30)
        rolled = [v for v in self.versions() if v['seq'] == change]
        return {'answer': out.stdout.strip(), 'latency_s': latency, 'after': result,
                'status': rolled[0]['status'] if rolled else None}

    def step_rate_limit(self):
        """The replication link's limit: iperf3 under the operator's
        10 Mbit/s, then under the raise augur computed from the history's
        volume, once approved."""
        entry = self.wait_for(
            'a pending raise of the replication limit',
            lambda: self.find_pending(lambda change: 'limit' in change and 'replicates' in change))
        old = self.iperf('db-1', 'db-2')
        change, latency, status = self.approve(entry['id'])
        version = [v for v in self.versions() if v['seq'] == change][0]
        rates = [r['rule']['rate'] for r in version['added'] if r['rule'].get('rate')]
        if not rates or rates[0][1] != 'kbps':
            raise StoryFailure('the approved raise carries no kbit/s rate: %r' % version)
        new_limit = rates[0][0] * 1000
        new = self.iperf('db-1', 'db-2')
        return {'entry': entry, 'old_limit': 10e6, 'old': old, 'change': change,
                'new_limit': new_limit, 'new': new, 'explanation': version['explanation']}

    def step_scanner(self):
        """web-2 scans every VM on the usual ports, twice, and keeps trying
        db-1's database: nothing answers, nothing is opened for it by
        augur, and nothing is rolled back because of it."""
        started_ms = int(time.time() * 1000)
        before = len(self.versions())
        targets = [('tcp', vm, port) for vm in self.net.vms if vm != SCANNER
                   for port in SCANNED_PORTS]
        first = self.probe(SCANNER, *targets, timeout=1.0)
        time.sleep(2)
        second = self.probe(SCANNER, *targets, timeout=1.0)
        lateral = [self.probe(SCANNER, ('tcp', 'db-1', 5432), ('tcp', 'app-1', 22))
                   for _ in range(5)]
        flagged = self.wait_for(
            'augur reports web-2 scanning',
            lambda: [l for l in self.daemon.log().splitlines()
                     if '%s is scanning' % SCANNER in l], timeout=60)
        # The scan's window closes, and several cycles of the decision loop
        # see it.
        time.sleep(WINDOW_S + 6)
        new = self.versions()[before:]
        passed = [t for t, r in list(first.items()) + list(second.items()) if r == 'ok']
        passed += [t for l in lateral for t, r in l.items() if r == 'ok']
        opened_for_scanner = [
            v for v in new if v['decider'] == 'automatic'
            and any(covers(r['rule'], SCANNER, dst, r['rule']['proto'], port,
                           self.history.tiers)
                    for r in v.get('added', []) for dst in self.net.vms
                    for port in [(r['rule'].get('ports') or [0])[0]])]
        undone = [v for v in new if isinstance(v['decider'], dict)
                  and 'auto_rollback' in v['decider']]
        queued = [l for l in self.pending()
                  if l.get('entry') and SCANNER in l['entry']['summary']['change']]
        return {'attempts': 2 * len(targets) + 10, 'passed': passed,
                'flagged': re.sub(r'\x1b\[[0-9;]*m', '', flagged[0]).split(' source=')[0],
                'opened_for_scanner': opened_for_scanner, 'undone': undone,
                'queued': queued, 'since_ms': started_ms}
