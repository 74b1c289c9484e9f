# tools/bench/suite.py: every benchmark row, run under CPython or the MicroPython unix
# port by tools/bench/run.py. Prints one JSON object per row, prefixed "ROW ".
#
# Rows of a group are timed in alternation with the floor (or reference row) they are
# compared with, in the same process, with
# the same loop shape: callees hoisted into locals, `for i in range(n)`.
import gc
import json
import sys

_here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
sys.path.insert(0, _here)
sys.path.insert(0, _here + "/../../lib")

from timing import MICROPYTHON, best_ns_per_op, bytes_per_op  # noqa: E402
import floors  # noqa: E402

_results = {}


def compare(group, rows):
    """Time rows [(name, loop, ref_name_or_None, note), ...] in alternation and print
    each with its ratio to its reference (a floor or an earlier row of the group)."""
    times = best_ns_per_op([r[1] for r in rows])
    for (name, loop, ref, note), ns in zip(rows, times):
        _results[name] = ns
        out = {"name": name, "group": group, "ns_per_op": ns, "bytes_per_op": bytes_per_op(loop),
               "ref": ref, "note": note}
        if ref is not None:
            out["ratio"] = ns / _results[ref]
        print("ROW " + json.dumps(out))


def skip_row(name, reason, group=""):
    print("ROW " + json.dumps({"name": name, "group": group, "skipped": reason}))


# -- channels -------------------------------------------------------------------------

def bench_channels():
    from helix_ipc import channel, oneshot

    ring = floors.RingFloor(32)

    def ring_loop(n):
        send = ring.send
        recv = ring.recv
        for i in range(n):
            send(i)
            recv()

    tx, rx = channel(32)

    def channel_loop(n):
        send = tx.send
        recv = rx.try_recv
        for i in range(n):
            send(i)
            recv()

    rows = [
        ("floor: ring send+recv", ring_loop, None, ""),
        ("channel send+try_recv", channel_loop, "floor: ring send+recv", ""),
    ]

    def oneshot_loop(n):
        for i in range(n):
            t, r = oneshot()
            t.send(i)
            r.try_recv()

    rows.append(("oneshot create+send+recv", oneshot_loop, "floor: ring send+recv", "includes creating the pair"))

    try:
        from collections import deque
    except ImportError:
        deque = None
    if deque is not None and not MICROPYTHON:
        d = deque()

        def deque_loop(n):
            append = d.append
            popleft = d.popleft
            for i in range(n):
                append(i)
                popleft()

        rows.append(("context: deque append+popleft", deque_loop, "floor: ring send+recv", "C"))
    if not MICROPYTHON:
        import queue

        q = queue.Queue(32)

        def queue_loop(n):
            put = q.put_nowait
            get = q.get_nowait
            for i in range(n):
                put(i)
                get()

        rows.append(("context: queue.Queue put_nowait+get_nowait", queue_loop, "channel send+try_recv",
                     "ratio = Queue / channel"))
    compare("channel", rows)


SECTIONS = [bench_channels]


def main():
    only = sys.argv[1:]  # optional section names
    for section in SECTIONS:
        if only and section.__name__ not in only:
            continue
        try:
            section()
        except ImportError as e:
            skip_row(section.__name__, "not available yet: %s" % e)
        gc.collect()


main()
