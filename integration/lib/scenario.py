"""A generated scenario (`augur scenario`) brought onto a Mininet network:
its VMs become hosts with the scenario's addresses and tiers, and its first
days become augur's history, shifted in time so that they end now.

The shift is what compresses time: days of a tenant's life (the three-tier
application's calls, DNS, NTP, monitoring, backups, replication, external
clients) are imported at once, as a switch in learn mode would have recorded
them, and the story goes on live on the hosts from the instant the history
ends. The trace's `label` column (benign / attack) is dropped before
import: augur never sees it.
"""

import csv
import json
import os
import subprocess
import time

from lib.probe import augur_binary

# The scenario's default first instant (Monday 2024-03-04 00:00 UTC): its
# day d starts at SCENARIO_START + d days.
SCENARIO_START = 1_709_510_400
DAY = 86_400
# The history's window (seconds), augur's default. Live records reach the
# harm rules and the predictor when their window closes. (The flat CSV has
# no durations, so a connection's bytes fall into the window it starts in:
# shorter windows would make the replication's peak rate look higher than
# any link carries.)
WINDOW_S = 60

# The VMs the scenario has from day 0 (web-3 appears on day 4, app-3 on
# day 7), on two switches; web-3 is plugged in live.
PLACEMENT = [
    [('dns-1', 'infra'), ('ntp-1', 'infra'), ('jump-1', 'infra'), ('web-1', 'web'),
     ('web-2', 'web'), ('web-3', 'web'), ('mon-1', 'mon')],
    [('app-1', 'app'), ('app-2', 'app'), ('db-1', 'db'), ('db-2', 'db'),
     ('backup-1', 'backup'), ('batch-1', 'batch')],
]

# The operator's starting policy: what the application was designed with.
# Everything the tenant also needs (name service, time, monitoring,
# backups, the application's own database access) is left for augur to
# find; the replication link has a limit that is too small for it.
BASE_POLICY = """
[endpoints.clients]
cidrs = ["0.0.0.0/0"]

[[allow]]
name = "clients reach the web tier"
from = "clients"
to = "label:tier=web"
proto = "tcp"
port = 443

[[allow]]
name = "web calls the application tier"
from = "label:tier=web"
to = "label:tier=app"
proto = "tcp"
port = 8080

[[allow]]
name = "db-1 replicates to db-2"
from = "vm:db-1"
to = "vm:db-2"
proto = "tcp"
port = 5432
rate = "10Mbit"
"""


def run(*args):
    """Runs a command; returns its stdout; raises with its output on failure."""
    result = subprocess.run(args, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError('%s failed (%d): %s%s' % (
            ' '.join(args), result.returncode, result.stderr, result.stdout))
    return result.stdout


class ScenarioHistory:
    """`augur scenario --seed SEED` cut at `cut` (days since the scenario's
    start, fractional), shifted so that the cut is `now`, and imported into
    the history store `store`.
    """

    def __init__(self, workdir, seed, cut_days, store):
        self.workdir = workdir
        self.seed = seed
        self.cut_days = cut_days
        self.store = store
        self.addresses = {}
        self.tiers = {}
        self.flows = 0
        self.attack_flows = 0
        self.shift = 0.0

    def prepare(self, now=None):
        """Generates, cuts, shifts and imports; returns a one-line summary."""
        now = time.time() if now is None else now
        days = int(self.cut_days) + 1
        trace = os.path.join(self.workdir, 'scenario.csv')
        inventory = os.path.join(self.workdir, 'scenario-inventory.json')
        run(augur_binary(), 'scenario', '--seed', str(self.seed), '--days', str(days),
            '--out', trace, '--inventory', inventory)
        with open(inventory) as f:
            for vm in json.load(f)['vms']:
                self.addresses[vm['id']] = vm['addresses'][0]
                self.tiers[vm['id']] = vm['labels'].get('tier', '')
        cut = SCENARIO_START + self.cut_days * DAY
        self.shift = now - cut
        history = os.path.join(self.workdir, 'history.csv')
        with open(trace, newline='') as src, open(history, 'w', newline='') as dst:
            reader = csv.DictReader(src)
            fields = [f for f in reader.fieldnames if f != 'label']
            writer = csv.DictWriter(dst, fieldnames=fields, extrasaction='ignore')
            writer.writeheader()
            for row in reader:
                ts = float(row['ts'])
                if ts >= cut:
                    break
                self.flows += 1
                if row.get('label') == 'attack':
                    self.attack_flows += 1
                row['ts'] = '%.6f' % (ts + self.shift)
                writer.writerow(row)
        # The inventory as it was at the cut: VMs that appear later (web-3
        # on day 4) are not known yet; they are plugged in live.
        present = set()
        with open(history, newline='') as f:
            for row in csv.DictReader(f):
                present.add(row['src'])
                present.add(row['dst'])
        with open(inventory) as f:
            vms = json.load(f)['vms']
        at_cut = os.path.join(self.workdir, 'inventory-at-cut.json')
        with open(at_cut, 'w') as f:
            json.dump({'vms': [vm for vm in vms if set(vm['addresses']) & present]}, f)
        run(augur_binary(), 'import', 'csv', history, '--inventory', at_cut,
            '--store', self.store, '--window', str(WINDOW_S))
        return ('scenario seed %d: %d flows of %.1f days (%d of them attacks) imported as '
                'the history up to now' % (self.seed, self.flows, self.cut_days,
                                          self.attack_flows))

    def placement(self):
        """PLACEMENT with the scenario's addresses and tiers."""
        return [[(name, self.tiers[name], self.addresses[name]) for name, _ in switch]
                for switch in PLACEMENT]
