# support: helpers for host tests that must run unchanged under CPython and the
# MicroPython unix port (no pytest inside MicroPython, so no fixtures or pytest.raises).
#
# Test modules are plain functions with `assert`; they import what they need from here.

import sys

MICROPYTHON = sys.implementation.name == "micropython"
CPYTHON = sys.implementation.name == "cpython"


class Skipped(Exception):
    """Raised by skip(); both runners report the test as skipped with this reason."""


def skip(reason):
    raise Skipped(reason)


def raises(exc_type, fn, *args, **kwargs):
    """Call fn(*args, **kwargs); it must raise exc_type. Returns the exception."""
    try:
        fn(*args, **kwargs)
    except exc_type as e:
        return e
    raise AssertionError("%s did not raise %s" % (getattr(fn, "__name__", fn), exc_type.__name__))


def need_heap_lock():
    """The micropython module with heap_lock, or skip (CPython has no heap lock)."""
    try:
        import micropython
    except ImportError:
        skip("needs micropython.heap_lock (MicroPython only): CPython cannot prove zero allocation")
    if not hasattr(micropython, "heap_lock"):
        skip("this MicroPython build has no heap_lock")
    return micropython


def need_threads():
    try:
        import _thread
    except ImportError:
        skip("needs _thread")
    return _thread


def run_in_thread(fn, timeout_s=30):
    """Run fn() in a new thread, wait for it and return its result (re-raising its
    exception here). Heap locks are per thread on the unix port, and scheduled
    callbacks run on the main thread, so this is how IRQ-path code is proven
    allocation-free without a scheduled callback running under the lock."""
    import time

    _thread = need_threads()
    box = [None, None, False]  # result, exception, done

    def body():
        try:
            box[0] = fn()
        except BaseException as e:  # noqa: B036 - handed back to the caller
            box[1] = e
        box[2] = True

    _thread.start_new_thread(body, ())
    waited = 0
    while not box[2]:
        time.sleep(0.001)
        waited += 1
        if waited > timeout_s * 1000:
            raise AssertionError("thread did not finish in %d s" % timeout_s)
    if box[1] is not None:
        raise box[1]
    return box[0]


def assert_no_alloc(fn, *args):
    """Call fn(*args) between heap_lock and heap_unlock, in a fresh thread.
    Fails if anything allocates (MemoryError). Returns fn's result."""
    micropython = need_heap_lock()

    n = len(args)
    a = args[0] if n > 0 else None
    b = args[1] if n > 1 else None
    c = args[2] if n > 2 else None
    if n > 3:
        raise ValueError("assert_no_alloc takes at most 3 arguments")

    def locked():
        # No *args here: unpacking a tuple into a call allocates.
        micropython.heap_lock()
        try:
            if n == 0:
                return fn()
            if n == 1:
                return fn(a)
            if n == 2:
                return fn(a, b)
            return fn(a, b, c)
        finally:
            micropython.heap_unlock()

    try:
        return run_in_thread(locked)
    except MemoryError:
        raise AssertionError("allocation under heap_lock in %s" % getattr(fn, "__name__", fn))


# -- board mode -------------------------------------------------------------------------
# A board (rp2, esp32, bare metal) has no sys.exc_info. "Board mode" runs the library on
# the unix port as a board sees it: a stand-in for `sys` without exc_info is put into
# sys.modules before helix_ipc is imported, so every later `import sys` (in the library,
# in a test) gets the stand-in (boardmode.py). _mp_runner.py (test_x[board]) and
# tools/bench (`make bench`, board columns) enter it; board_mode_problems() is how both
# prove it held (a board item fails when it did not, never passes silently).

BOARD_MODE = False


def enter_board_mode():
    """Install the sys stand-in (no exc_info). Must run before helix_ipc is imported:
    raises RuntimeError if a helix_ipc module is loaded already."""
    global BOARD_MODE
    import boardmode

    standin = boardmode.enter()
    BOARD_MODE = True
    return standin


def board_mode_problems(load_library=True):
    """What breaks board mode now: [] when `import sys` lacks exc_info and so does every
    loaded helix_ipc module's `sys`. With load_library, imports helix_ipc._compat first
    (a library module that does `import sys`) so the check always covers one."""
    import boardmode

    return boardmode.problems(load_library)


# -- allocation per call, frames included --------------------------------------------------

def _mem_total():
    try:
        import micropython
    except ImportError:
        skip("needs micropython.mem_total (MicroPython only): CPython cannot count allocations")
    if not hasattr(micropython, "mem_total"):
        skip("this MicroPython build has no micropython.mem_total (MICROPY_MEM_STATS)")
    return micropython.mem_total


def frame_alloc(fn, *args):
    """Heap bytes fn(*args) allocates per call, counted from micropython.mem_total()
    deltas over 64 calls in this thread (after one warm-up call), less the same window
    around a no-op. It counts everything, including frames the VM heap-allocates for a
    bytecode function whose state exceeds the C-stack budget: those are invisible to
    heap_lock (the VM falls back to the C stack then) and to gc.mem_alloc() deltas (freed
    at return). A callback scheduled meanwhile is counted too. Returns an int (bytes per
    call, rounded down); 0 means allocation-free. Skips where mem_total is missing."""
    mem_total = _mem_total()
    n = len(args)
    if n > 3:
        raise ValueError("frame_alloc takes at most 3 arguments")
    a = args[0] if n > 0 else None
    b = args[1] if n > 1 else None
    c = args[2] if n > 2 else None

    def window(f):
        # Fixed arity, no *args in the window: unpacking a tuple into a call allocates.
        t0 = mem_total()
        if n == 0:
            for _ in range(64):
                f()
        elif n == 1:
            for _ in range(64):
                f(a)
        elif n == 2:
            for _ in range(64):
                f(a, b)
        else:
            for _ in range(64):
                f(a, b, c)
        return mem_total() - t0

    def noop0():
        return None

    def noop1(x):
        return None

    def noop2(x, y):
        return None

    def noop3(x, y, z):
        return None

    base_fn = (noop0, noop1, noop2, noop3)[n]
    window(base_fn)
    if n == 0:
        fn()  # warm-up: lazily created state is not per-call cost
    elif n == 1:
        fn(a)
    elif n == 2:
        fn(a, b)
    else:
        fn(a, b, c)
    base = window(base_fn)
    used = window(fn)
    return max(0, used - base) // 64
