"""The closed loop end to end (issue: orchestration), on Mininet: a
generated scenario's history, thirteen VM hosts on two userspace switches,
`augur run` with its decision loop on, and real traffic. The story and
what each step measures are in lib/story.py; this test asserts them:

- a low-risk opening is applied by augur alone, and the flow it opens
  succeeds at its first packet (TCP connect and echo within 0.9 s, under
  the 1 s SYN retransmission), while a key nobody used stays shut;
- a VM that appears (web-3) gets its tier's openings before it sends
  anything: its first DNS query is answered;
- a high-risk opening (PostgreSQL) waits in OVSDB and is refused until
  `ovs-vsctl set Open_vSwitch . external_ids:augur-decision-<id>=...`
  approves it; then it succeeds; `augur rollback --change N` refuses it
  again;
- a rate limit raised from the observed volume (approved) holds under
  iperf3, and so did the old one;
- the scanning VM gets nothing through and nothing opened automatically,
  and its scan makes augur undo nothing.

Run with Debian's /usr/bin/python3 as root (`scripts/test.sh` does, through
run_tests.py); never `mn -c`.
"""

import os
import shutil
import tempfile
import unittest

from lib.env import require_environment

# Headroom over a meter's rate for what iperf3 reports as received once the
# first second is left out: the meter counts whole frames and iperf3 only
# payload, so goodput under a holding limit is below the rate; 3% covers
# the token bucket refilling while TCP probes.
METER_SLACK = 1.03


class OrchestrationEndToEnd(unittest.TestCase):

    def setUp(self):
        require_environment()
        from lib.story import Story
        self.workdir = tempfile.mkdtemp(prefix='augur-e2e-')
        self.story = Story(say=lambda line: print('  ' + line, flush=True))
        try:
            self.story.start(self.workdir)
        except BaseException:
            self.tearDown()
            raise

    def tearDown(self):
        try:
            self.story.stop()
        finally:
            if os.environ.get('AUGUR_KEEP_WORKDIR'):
                print('  kept ' + self.workdir)
            else:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def test_learns_predicts_applies_queues_rolls_back_and_never_opens_for_a_scanner(self):
        story = self.story
        print()

        # 1. Low risk: applied by augur, the flow passes at its first packet.
        low = story.step_low_risk_before_first_packet()
        print('  1. %d automatic changes; mon-1 -> web-1 tcp/9100 opened by change %d '
              '(%s) after %.1f s; first scrape: %s; web-1 tcp/5432: %s'
              % (len(low['automatic']), low['version']['seq'], low['version']['explanation'],
                 low['waited_s'], low['scrape'], low['unused']))
        self.assertEqual(low['scrape'], 'ok')
        self.assertEqual(low['unused'], 'timeout')

        # 2. A new VM gets its tier's openings before its first packet.
        new = story.step_new_vm()
        print('  2. web-3 plugged in: its flows on both switches %.2f s later, covered by '
              'change %s; first packets: %s'
              % (new['installed_s'], ', '.join(str(v['seq']) for v in new['versions']),
                 {'%s %s/%d' % (d, p, n): r for (p, d, n), r in new['results'].items()}))
        self.assertTrue(new['versions'], 'no change in force covers web-3 -> dns-1 udp/53')
        self.assertEqual(new['results'][('udp', 'dns-1', 53)], 'ok')
        self.assertEqual(new['results'][('tcp', 'app-1', 8080)], 'ok')

        # 3. High risk: queued, refused, approved with ovs-vsctl, then works.
        review = story.step_review()
        print('  3. pending %s: %s; before approval: %s; applied as change %d %.2f s after '
              'ovs-vsctl; then: %s'
              % (review['entry']['id'], review['entry']['entry']['summary'],
                 review['before'], review['change'], review['latency_s'], review['after']))
        self.assertEqual(review['before'], 'timeout')
        self.assertEqual(review['after'], 'ok')
        self.assertLess(review['latency_s'], 5.0)

        # 4. Rollback refuses it again.
        undo = story.step_rollback(review['change'])
        print('  4. %s (%.2f s); then: %s' % (undo['answer'], undo['latency_s'], undo['after']))
        self.assertEqual(undo['after'], 'timeout')
        self.assertEqual(undo['status']['state'], 'rolled_back')

        # 5. Rate limit set from the observed volume holds under iperf3.
        limit = story.step_rate_limit()
        print('  5. iperf3 under the operator\'s 10 Mbit/s: %.2f Mbit/s; change %d (%s): '
              'limit %.1f Mbit/s, iperf3 %.2f Mbit/s'
              % (limit['old'] / 1e6, limit['change'], limit['explanation'],
                 limit['new_limit'] / 1e6, limit['new'] / 1e6))
        self.assertLessEqual(limit['old'], limit['old_limit'] * METER_SLACK)
        self.assertLessEqual(limit['new'], limit['new_limit'] * METER_SLACK)
        self.assertGreater(limit['new'], 2 * limit['old_limit'])

        # 6. The scanner.
        scan = story.step_scanner()
        print('  6. web-2 scanned: %d attempts, %d answered; %d automatic changes for it; '
              '%d undone after the scan; %d entries about it in review'
              % (scan['attempts'], len(scan['passed']), len(scan['opened_for_scanner']),
                 len(scan['undone']), len(scan['queued'])))
        print('     ' + scan['flagged'][scan['flagged'].find('web-2 is'):])
        self.assertEqual(scan['passed'], [])
        self.assertEqual(scan['opened_for_scanner'], [])
        self.assertEqual(scan['undone'], [])


if __name__ == '__main__':
    unittest.main()
