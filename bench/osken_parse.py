"""Parse a file of concatenated OpenFlow messages with os-ken, as its
controller would (ofproto_parser.msg per message), and report the rate.

Usage: python osken_parse.py FILE ENTRIES_PER_PASS [REPEAT]
Prints one line of JSON: {"seconds": best pass, "messages": n, "entries": n}.
"""

import json
import sys
import time

from os_ken.ofproto import ofproto_parser, ofproto_v1_3, ofproto_v1_3_parser
from os_ken.ofproto import ofproto_v1_4, ofproto_v1_4_parser


class Datapath:
    """The parts of os-ken's Datapath that its parsers touch."""

    def __init__(self, version):
        if version == ofproto_v1_3.OFP_VERSION:
            self.ofproto, self.ofproto_parser = ofproto_v1_3, ofproto_v1_3_parser
        else:
            self.ofproto, self.ofproto_parser = ofproto_v1_4, ofproto_v1_4_parser
        self.id = 1


def parse_all(buf, datapath):
    offset, messages, entries = 0, 0, 0
    while offset < len(buf):
        version, msg_type, msg_len, xid = ofproto_parser.header(buf[offset:])
        msg = ofproto_parser.msg(
            datapath, version, msg_type, msg_len, xid, buf[offset : offset + msg_len]
        )
        body = getattr(msg, "body", None)
        entries += len(body) if isinstance(body, list) else 1
        messages += 1
        offset += msg_len
    return messages, entries


def main():
    path = sys.argv[1]
    repeat = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    with open(path, "rb") as f:
        buf = f.read()
    datapath = Datapath(buf[0])
    best = None
    for _ in range(repeat):
        start = time.perf_counter()
        messages, entries = parse_all(buf, datapath)
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
    expected = int(sys.argv[2])
    if entries != expected:
        sys.exit(f"os-ken decoded {entries} entries, expected {expected}")
    print(json.dumps({"seconds": best, "messages": messages, "entries": entries, "bytes": len(buf)}))


if __name__ == "__main__":
    main()
