"""Runs `augur probe` and reads what it prints."""

import json
import os
import re
import subprocess
import threading

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def augur_binary():
    """The augur binary: $AUGUR_BIN, or the debug build of this checkout."""
    if os.environ.get('AUGUR_BIN'):
        return os.environ['AUGUR_BIN']
    target = os.environ.get('CARGO_TARGET_DIR', os.path.join(REPO, 'target'))
    return os.path.join(target, 'debug', 'augur')


class Probe:
    """`augur probe --listen tcp:127.0.0.1:0`: started on a free port, which
    the probe names on its first line.

    With json=True, events() parses each line; otherwise the lines are kept as
    printed. `echo` is called with every line as it arrives (for the demo).
    """

    def __init__(self, timeout, json_output=True, echo=None):
        args = [augur_binary(), 'probe', '--listen', 'tcp:127.0.0.1:0',
                '--timeout', str(timeout)]
        if json_output:
            args.append('--json')
        self.json = json_output
        self.echo = echo
        self.lines = []
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        first = self.process.stdout.readline()
        if not first:
            self.process.wait()
            raise RuntimeError('augur probe did not start: %s' % self.process.stderr.read())
        self._keep(first)
        self.port = self._port(first)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def _port(self, line):
        if self.json:
            address = json.loads(line)['address']
        else:
            match = re.match(r'listening on tcp:(\S+)', line)
            if not match:
                raise RuntimeError('unexpected first line from augur probe: %r' % line)
            address = match.group(1)
        return int(address.rsplit(':', 1)[1])

    def _keep(self, line):
        line = line.rstrip('\n')
        self.lines.append(line)
        if self.echo:
            self.echo(line)

    def _read(self):
        for line in self.process.stdout:
            self._keep(line)

    def wait(self, timeout=None):
        """Waits for the probe to exit; returns (exit status, stderr)."""
        status = self.process.wait(timeout=timeout)
        self._reader.join()
        return status, self.process.stderr.read()

    def events(self):
        """The JSON events printed so far."""
        return [json.loads(line) for line in self.lines]

    def stop(self):
        """Ends the probe if it is still running (this process started it)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
