# tools/bench/timing.py: the measuring core of `make bench`, for CPython and MicroPython.
#
# Runs in the benchmark process only (never on a board's hot path). A row's loop is a
# function `loop(n)` that performs n operations with its callees hoisted into locals.
# Rows of a group are timed in alternation (a floor and the rows compared with it see
# the same machine load), best of REPEATS with gc.collect() before each repeat.
# Allocation per op on MicroPython comes from micropython.mem_total() deltas: that
# counter sees every allocation, including bytecode frames the VM puts on the heap for
# the length of one call (gc.mem_alloc() deltas and heap_lock miss those).
import gc
import sys
import time

MICROPYTHON = sys.implementation.name == "micropython"
REPEATS = 15  # best of 15 (BENCH.md asks for >= 7): steadier on a machine shared with other work
N = 20000

if hasattr(time, "perf_counter_ns"):
    _now_ns = time.perf_counter_ns
elif hasattr(time, "time_ns"):
    _now_ns = time.time_ns
else:

    def _now_ns():
        return time.ticks_us() * 1000

try:
    import micropython

    _mem_total = getattr(micropython, "mem_total", None)
    _schedule = getattr(micropython, "schedule", None)
except ImportError:
    micropython = None
    _mem_total = None
    _schedule = None

# How bytes per op are counted here; reported with every row.
if _mem_total is not None:
    ALLOC_COUNTER = "mem_total"
elif MICROPYTHON:
    ALLOC_COUNTER = "mem_alloc (no micropython.mem_total in this build: heap-allocated frames are not seen)"
else:
    ALLOC_COUNTER = None


def _nothing():
    return None


def best_ns_per_op(loops, n=N, repeats=None, resets=None, chunk=None, every=None):
    """Best-of-`repeats` ns/op for each loop in `loops`, timed in alternation.
    With `chunk`, each repeat runs n ops as n // chunk calls loop(chunk), each after an
    untimed resets[k]() (e.g. drain a ring that holds at most `chunk` items).
    `every`, a list, receives each repeat's ns/op per loop ([[loop0, loop1, ...], ...])."""
    repeats = repeats or REPEATS  # suite.py --repeats sets REPEATS (more on a busy machine)
    resets = resets or [_nothing] * len(loops)
    for loop, reset in zip(loops, resets):
        reset()
        loop(min(n, chunk or 100, 100))  # warm caches and lazily created state
    best = [None] * len(loops)
    ops = n if chunk is None else (n // chunk) * chunk
    for _ in range(repeats):
        this = []
        for k, loop in enumerate(loops):
            gc.collect()
            if chunk is None:
                t0 = _now_ns()
                loop(n)
                dt = _now_ns() - t0
            else:
                reset = resets[k]
                dt = 0
                for _ in range(n // chunk):
                    reset()
                    t0 = _now_ns()
                    loop(chunk)
                    dt += _now_ns() - t0
            if best[k] is None or dt < best[k]:
                best[k] = dt
            this.append(dt / ops)
        if every is not None:
            every.append(this)
    return [b / ops for b in best]


def bytes_per_op(loop, n=2000, reset=_nothing):
    """Heap bytes allocated per op on MicroPython: the counter's delta over loop(n) less
    its delta over loop(0) (the call itself). None on CPython (no comparable counter)."""
    if not MICROPYTHON:
        return None
    reset()
    loop(min(n, 100))
    if _mem_total is not None:
        reset()
        t0 = _mem_total()
        loop(0)
        base = _mem_total() - t0
        reset()
        t0 = _mem_total()
        loop(n)
        used = _mem_total() - t0
        return max(0, used - base) / n
    reset()
    gc.collect()
    gc.disable()
    try:
        before = gc.mem_alloc()
        loop(n)
        after = gc.mem_alloc()
    finally:
        gc.enable()
    return (after - before) / n


def in_scheduler(fn):
    """Run fn() inside a micropython.schedule callback and return its result. While a
    scheduled callback runs, MicroPython runs no other: a drain that the library
    schedules meanwhile waits until fn returns, as it waits while a hard IRQ runs on a
    board. Without micropython.schedule (CPython) fn() is simply called."""
    if _schedule is None:
        return fn()
    box = [None, None, False]  # result, exception, done

    def cb(_):
        try:
            box[0] = fn()
        except BaseException as e:  # noqa: B036 - handed back to the caller
            box[1] = e
        box[2] = True

    for _ in range(1000):
        try:
            _schedule(cb, None)
            break
        except RuntimeError:  # schedule queue full: let the queued callbacks run first
            for _ in range(1000):
                pass
    else:
        raise RuntimeError("micropython.schedule queue stayed full")
    while not box[2]:  # the VM runs scheduled callbacks at this loop's back-edge
        pass
    if box[1] is not None:
        raise box[1]
    return box[0]
