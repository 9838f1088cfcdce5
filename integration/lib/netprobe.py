"""Traffic for the enforcement test, run inside a Mininet host's namespace
with Debian's python3 (no third-party modules):

    netprobe.py serve TCP_PORTS UDP_PORTS
        Echo server: every TCP connection and UDP datagram on the listed
        ports (comma-separated) is answered with what it sent.
    netprobe.py probe TIMEOUT PROTO:IP:PORT...
        Tries every target at once and prints one JSON object mapping each
        target to "ok" (connected and echoed, or UDP answered) or the
        failure ("timeout", "refused", ...).
    netprobe.py hold IP PORT
        Opens one TCP connection, then for every line read on stdin sends it
        and prints "ok" when the echo came back, else the failure: a
        connection that must survive a policy change or a controller restart.
    netprobe.py deny-loop SECONDS TIMEOUT PROTO:IP:PORT
        Tries the target again and again for SECONDS; prints a JSON object
        with the number of attempts and of successes (which must stay 0 for
        a denied target).

A denied packet is dropped, so a denied connection times out; an allowed
one to a port with a listener succeeds. The servers listen on every port the
test probes, so "refused" means a reset got through, which is a failure too.
"""

import json
import select
import socket
import sys
import threading
import time

PAYLOAD = b'augur-probe\n'


def _echo_tcp(conn):
    with conn:
        conn.settimeout(600)
        try:
            while True:
                data = conn.recv(4096)
                if not data:
                    return
                conn.sendall(data)
        except OSError:
            return


def serve(tcp_ports, udp_ports):
    listeners = []
    for port in tcp_ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(('0.0.0.0', port))
        s.listen(64)
        listeners.append(('tcp', s))
    for port in udp_ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(('0.0.0.0', port))
        listeners.append(('udp', s))
    print('listening', flush=True)
    by_fd = {s.fileno(): (kind, s) for kind, s in listeners}
    while True:
        ready, _, _ = select.select(list(by_fd), [], [])
        for fd in ready:
            kind, s = by_fd[fd]
            if kind == 'tcp':
                conn, _ = s.accept()
                threading.Thread(target=_echo_tcp, args=(conn,), daemon=True).start()
            else:
                data, peer = s.recvfrom(2048)
                s.sendto(data, peer)


def _parse_target(text):
    proto, ip, port = text.split(':')
    return proto, ip, int(port)


def try_once(proto, ip, port, timeout):
    """One connection attempt with an echo; "ok" or why not."""
    try:
        if proto == 'tcp':
            with socket.create_connection((ip, port), timeout=timeout) as s:
                s.settimeout(timeout)
                s.sendall(PAYLOAD)
                got = b''
                while len(got) < len(PAYLOAD):
                    chunk = s.recv(4096)
                    if not chunk:
                        return 'closed'
                    got += chunk
                return 'ok' if got == PAYLOAD else 'garbled'
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            s.connect((ip, port))
            s.send(PAYLOAD)
            return 'ok' if s.recv(2048) == PAYLOAD else 'garbled'
    except socket.timeout:
        return 'timeout'
    except ConnectionRefusedError:
        return 'refused'
    except OSError as e:
        return 'error: %s' % e


def probe(timeout, targets):
    results = {}

    def run(target):
        proto, ip, port = _parse_target(target)
        results[target] = try_once(proto, ip, port, timeout)

    threads = [threading.Thread(target=run, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(results), flush=True)


def hold(ip, port):
    s = socket.create_connection((ip, port), timeout=5)
    s.settimeout(3)
    print('connected', flush=True)
    for line in sys.stdin:
        message = line.encode()
        try:
            s.sendall(message)
            got = b''
            while len(got) < len(message):
                chunk = s.recv(4096)
                if not chunk:
                    raise OSError('closed')
                got += chunk
            print('ok' if got == message else 'garbled', flush=True)
        except socket.timeout:
            print('timeout', flush=True)
        except OSError as e:
            print('error: %s' % e, flush=True)


def deny_loop(seconds, timeout, target):
    proto, ip, port = _parse_target(target)
    deadline = time.monotonic() + seconds
    attempts = successes = 0
    while time.monotonic() < deadline:
        attempts += 1
        if try_once(proto, ip, port, timeout) == 'ok':
            successes += 1
        else:
            # A refusal comes back at once; do not spin on it.
            time.sleep(0.01)
    print(json.dumps({'attempts': attempts, 'successes': successes}), flush=True)


def main(argv):
    command = argv[1]
    if command == 'serve':
        ports = lambda text: [int(p) for p in text.split(',') if p]  # noqa: E731
        serve(ports(argv[2]), ports(argv[3]))
    elif command == 'probe':
        probe(float(argv[2]), argv[3:])
    elif command == 'hold':
        hold(argv[2], int(argv[3]))
    elif command == 'deny-loop':
        deny_loop(float(argv[2]), float(argv[3]), argv[4])
    else:
        raise SystemExit('unknown command %r' % command)


if __name__ == '__main__':
    main(sys.argv)
