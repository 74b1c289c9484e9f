# tools/bench/timing.py: the measuring core of `make bench`, for CPython and MicroPython.
#
# Runs in the benchmark process only (never on a board's hot path). A row's loop is a
# function `loop(n)` that performs n operations with its callees hoisted into locals;
# it is timed best-of-REPEATS with gc.collect() before each repeat, and on MicroPython
# its allocation is read from gc.mem_alloc() with the collector disabled.
import gc
import sys
import time

MICROPYTHON = sys.implementation.name == "micropython"
REPEATS = 7
N = 20000

if hasattr(time, "perf_counter_ns"):
    _now_ns = time.perf_counter_ns
elif hasattr(time, "time_ns"):
    _now_ns = time.time_ns
else:

    def _now_ns():
        return time.ticks_us() * 1000


def best_ns_per_op(loops, n=N, repeats=REPEATS):
    """Best-of-`repeats` ns/op for each loop in `loops`. The loops are timed in
    alternation (a floor and the rows compared with it see the same machine load)."""
    for loop in loops:
        loop(min(n, 100))  # warm caches and lazily created state
    best = [None] * len(loops)
    for _ in range(repeats):
        for k, loop in enumerate(loops):
            gc.collect()
            t0 = _now_ns()
            loop(n)
            dt = _now_ns() - t0
            if best[k] is None or dt < best[k]:
                best[k] = dt
    return [b / n for b in best]


def bytes_per_op(loop, n=2000):
    """Heap bytes allocated per op on MicroPython (None on CPython, which has no
    comparable counter)."""
    if not MICROPYTHON:
        return None
    loop(min(n, 100))
    gc.collect()
    gc.disable()
    try:
        before = gc.mem_alloc()
        loop(n)
        after = gc.mem_alloc()
    finally:
        gc.enable()
    return (after - before) / n
