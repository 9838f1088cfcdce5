"""The Python side of idl_compare: the `ovs` IDL loading and updating a
replica of the Interface table. Protocol on stdout/stdin:
  READY <wall seconds from connect to a complete replica> <cpu seconds>
  (waits for a line GO; the IDL is not run meanwhile, so it reads nothing)
  DONE <wall seconds to apply the pending updates> <cpu seconds>
Arguments: target schema-path rows
"""
import sys
import time

import ovs.db.idl
import ovs.poller


class CountingIdl(ovs.db.idl.Idl):
    """Counts row modifications as the IDL applies them."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.modified = 0

    def notify(self, event, row, updates=None):
        if event == ovs.db.idl.ROW_UPDATE:
            self.modified += 1


def run_until(idl, done):
    while not done():
        idl.run()
        if done():
            return
        poller = ovs.poller.Poller()
        idl.wait(poller)
        poller.block()


def main():
    target, schema_path, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
    helper = ovs.db.idl.SchemaHelper(location=schema_path)
    helper.register_table("Interface")
    t0, c0 = time.perf_counter(), time.process_time()
    idl = CountingIdl(target, helper)
    run_until(idl, lambda: len(idl.tables["Interface"].rows) >= rows)
    load, load_cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"READY {load:.6f} {load_cpu:.6f}", flush=True)
    sys.stdin.readline()
    t1, c1 = time.perf_counter(), time.process_time()
    run_until(idl, lambda: idl.modified >= rows)
    apply, apply_cpu = time.perf_counter() - t1, time.process_time() - c1
    print(f"DONE {apply:.6f} {apply_cpu:.6f}", flush=True)
    idl.close()


main()
