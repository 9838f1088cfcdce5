"""augur's demo: the closed loop on a Mininet topology, narrated.

A generated scenario (a three-tier tenant with name service, time,
monitoring, backups and database replication) gives augur three days of
history; thirteen VM hosts run on two linked userspace Open vSwitch
switches; `augur run` enforces the operator's starting policy with its
decision loop on. The demo shows what augur learned, what it predicted and
applied by itself, what waits for an operator (and the `ovs-vsctl` line
that approves it), a rollback, a rate limit under iperf3, and a scanning
VM getting nothing. Everything started here is stopped and removed at the
end (bridges, interfaces, host processes, augur's keys in OVSDB).

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


def say(text=''):
    print('demo: ' + text if text else '', flush=True)


def show(lines, limit=None):
    lines = [l for l in lines if l.strip()]
    for line in lines[:limit]:
        print('        ' + line, flush=True)
    if limit is not None and len(lines) > limit:
        print('        ... (%d more)' % (len(lines) - limit), flush=True)


def verdict(result):
    return 'connected' if result == 'ok' else 'blocked (%s)' % result


def main():
    os.environ['AUGUR_REQUIRE_OVS'] = '1'
    require_environment()
    from lib.scenario import BASE_POLICY
    from lib.story import Story

    workdir = tempfile.mkdtemp(prefix='augur-demo-')
    story = Story(say=say, operator='alice')
    try:
        say('1. history: a generated tenant, shifted so that its first days end now')
        story.start(workdir)
        say('   thirteen VMs on %s (web-3 is not plugged in yet):' % ' and '.join(story.net.bridges))
        for name, vm in story.net.vms.items():
            print('        %-9s tier=%-7s %-10s on %s' % (name, vm['tier'], vm['ip'], vm['bridge']),
                  flush=True)
        say('   the operator\'s starting policy (everything else between VMs is denied):')
        show([l for l in BASE_POLICY.splitlines() if l.startswith(('name', 'rate'))])

        say()
        say('2. augur predicts and applies its low-risk changes by itself')
        low = story.step_low_risk_before_first_packet()
        say('   %d changes applied automatically within %.0f s of start, e.g.:'
            % (len(low['automatic']), low['waited_s']))
        show(['change %d: %s' % (v['seq'], v['explanation']) for v in low['automatic']], limit=8)
        say('   mon-1 scrapes web-1 tcp/9100 (no rule of the starting policy allows it): %s'
            ' at the first packet' % verdict(low['scrape']))
        say('   mon-1 -> web-1 tcp/5432 (never used): %s' % verdict(low['unused']))

        say()
        say('3. web-3 is plugged in (its identity written into OVSDB)')
        new = story.step_new_vm()
        say('   augur compiled it into both switches %.2f s later; covered by change %s;'
            ' its first packets:'
            % (new['installed_s'], ', '.join(str(v['seq']) for v in new['versions'])))
        show(['%s %s/%d: %s' % (dst, proto, port, verdict(r))
              for (proto, dst, port), r in new['results'].items()])

        say()
        say('4. high risk waits for an operator, in the switch\'s own database')
        pending = subprocess.run([augur_binary(), 'pending'], capture_output=True, text=True)
        say('   $ augur pending')
        show(pending.stdout.splitlines(), limit=12)
        review = story.step_review()
        say('   app-1 -> db-1 tcp/5432 before the approval: %s' % verdict(review['before']))
        say('   augur: %s (%.2f s after ovs-vsctl)' % (review['status'], review['latency_s']))
        say('   app-1 -> db-1 tcp/5432 now: %s' % verdict(review['after']))

        say()
        say('5. rollback')
        undo = story.step_rollback(review['change'], reason='alice: not before the audit')
        say('   augur: %s' % undo['answer'])
        say('   app-1 -> db-1 tcp/5432 now: %s' % verdict(undo['after']))

        say()
        say('6. a transfer limit computed from the observed volume')
        limit = story.step_rate_limit()
        say('   iperf3 db-1 -> db-2 under the operator\'s 10 Mbit/s: %.1f Mbit/s' % (limit['old'] / 1e6))
        say('   approved: %s' % limit['explanation'])
        say('   iperf3 under the new %.1f Mbit/s: %.1f Mbit/s'
            % (limit['new_limit'] / 1e6, limit['new'] / 1e6))

        say()
        say('7. web-2 is compromised and scans the network')
        scan = story.step_scanner()
        say('   %d attempts, %d answered' % (scan['attempts'], len(scan['passed'])))
        say('   augur: %s' % scan['flagged'][scan['flagged'].find('web-2 is'):])
        say('   changes applied for it: %d; changes undone because of its scan: %d'
            % (len(scan['opened_for_scanner']), len(scan['undone'])))

        say()
        say('8. the history of versions (augur history), last entries:')
        history = subprocess.run([augur_binary(), 'history', '--store', story.store],
                                 capture_output=True, text=True)
        show([l for l in history.stdout.splitlines() if l.startswith('version')][-6:])
    finally:
        say()
        say('stopping augur, removing the bridges, interfaces and augur\'s OVSDB keys')
        story.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    say('done')


if __name__ == '__main__':
    main()
