# helix_ipc._compat: the one place that knows which interpreter we run on.
#
# Every shim lives here: const, schedule, ticks_*, disable_irq/enable_irq, locks, json_text,
# heap_lock, and `micropython` itself for the `@micropython.native` decorator. No other
# module imports `machine` or `micropython` on its own.
# Importing this module creates no objects on the hardware and starts nothing.
# All functions may be called from any context; `ticks_us`, `disable_irq` and
# `enable_irq` are hard-IRQ safe on MicroPython (they are the built-ins there).

import sys

IS_MICROPYTHON = sys.implementation.name == "micropython"

# The fallbacks below redefine names the stubs type differently; `type: ignore` marks
# each such shim for mypy (`make check`).
try:
    from micropython import const, schedule, heap_lock, heap_unlock
except ImportError:  # CPython, or a build without these

    def const(value):  # type: ignore[misc]
        return value

    schedule = None  # type: ignore[assignment]
    heap_lock = None  # type: ignore[assignment]
    heap_unlock = None  # type: ignore[assignment]

# `@micropython.native` on a hot function that needs try/except: MicroPython's compiler
# takes that decorator by its spelling (the name is not looked up at run time there), and
# a native function's frame lives on the C stack. A bytecode function whose arguments,
# locals, value stack and exception blocks (3 words each) exceed 11 words gets its frame
# heap-allocated on every call, and `except X as e` alone takes two blocks. Boards have
# no sys.exc_info to catch with a bare `except:` instead. CPython gets a stand-in whose
# `native` returns the function unchanged. Every rp2, esp32 and unix build has the
# native emitter; mpy-cross needs `-march` for modules that use it.
try:
    import micropython
except ImportError:

    class micropython:  # type: ignore[no-redef]
        @staticmethod
        def native(f):
            return f

# Ticks: MicroPython's ticks wrap at its small-int range: 2**30 on 32-bit boards,
# 2**62 on the 64-bit unix port. Code must only use ticks_diff/ticks_add, never assume
# a period. The CPython shim wraps at 2**30, as a board does, so that wraparound logic
# is exercised on the host too.
_TICKS_MAX = const((1 << 30) - 1)
_TICKS_HALF = const(1 << 29)

try:
    from time import ticks_us, ticks_ms, ticks_diff, ticks_add
except ImportError:
    import time as _time

    def ticks_us():  # type: ignore[misc]
        return (_time.monotonic_ns() // 1000) & _TICKS_MAX  # type: ignore[attr-defined]

    def ticks_ms():  # type: ignore[misc]
        return (_time.monotonic_ns() // 1000000) & _TICKS_MAX  # type: ignore[attr-defined]

    def ticks_diff(end, start):  # type: ignore[misc,no-redef]
        return ((end - start + _TICKS_HALF) & _TICKS_MAX) - _TICKS_HALF

    def ticks_add(ticks, delta):  # type: ignore[misc]
        return (ticks + delta) & _TICKS_MAX

# Threads: a lock only where threads exist (bare-metal builds have none).
try:
    from _thread import allocate_lock
except ImportError:
    allocate_lock = None  # type: ignore[assignment]


def new_lock():
    """A new lock, or None when this interpreter has no threads."""
    if allocate_lock is None:
        return None
    return allocate_lock()


# Interrupt masking: the real thing on boards, a no-op elsewhere.
try:
    from machine import disable_irq, enable_irq
except ImportError:

    def disable_irq():  # type: ignore[misc]
        return 0

    def enable_irq(state):  # type: ignore[misc]
        pass


# JSON text with non-ASCII characters as they are (helix_ipc.wire): CPython's json would
# write a character outside the basic plane as a \ud83d\ude00 pair, which MicroPython's
# json does not join back; MicroPython writes raw UTF-8 itself (and takes no ensure_ascii).
# (CPython: json is imported on the first call, not with the core: it pulls in re, enum,
# collections and _thread, which the core must import without.)
if IS_MICROPYTHON:
    from json import dumps as json_text
else:

    def json_text(x):  # type: ignore[no-redef]
        import json

        return json.dumps(x, ensure_ascii=False)  # type: ignore[call-overload]


def machine_module():
    """The `machine` module, or None where it does not exist (CPython)."""
    try:
        import machine
    except ImportError:
        return None
    return machine
