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
