# tools/hostmachine/machine.py: a host `machine` module for the MicroPython unix port.
#
# Put tools/hostmachine first on sys.path (before helix_ipc._compat is imported) and
# `import machine` finds this file: on the unix port `machine` is an extensible built-in,
# so a machine.py on the path wins and re-exports the built-in (`umachine`) here.
# It adds what the unix port lacks, with the semantics of a real board:
#
# - Timer(id, mode=, period=/freq=, callback=, hard=): one thread per running timer.
#   Hard callbacks run in that thread under micropython.heap_lock() (heap locks are per
#   thread on the unix port, so only the callback is constrained) and with the IRQ mask
#   held; a hard callback that raises (MemoryError when it allocates) disables its timer
#   and is recorded, as a board does. Soft callbacks go through micropython.schedule.
# - disable_irq() / enable_irq(state): mask hard timer callbacks (they wait, as pending
#   IRQs do). Nested calls nest. Called inside a hard callback they do nothing.
# - Pin(id, mode=Pin.OUT, value=None): value()/on()/off()/toggle(); `history` records
#   every level written (the status LED of the virtual board).
#
# Board flavour ("rp2" by default; "esp32"): set_board(name), or env HELIX_MACHINE_BOARD.
#   rp2:   virtual timers only (id -1); hard=True allowed.
#   esp32: hardware timers 0..3; hard=True raises ValueError; a soft tick that finds the
#          schedule queue full is dropped silently (counted in Timer.soft_dropped).
#   (A real rp2 soft timer coalesces instead of dropping; here both count it.)
# Also importable under CPython (no heap lock or scheduler there: hard callbacks run
# unlocked, soft callbacks run in the timer thread).

try:
    from umachine import *  # noqa: F401,F403 - the unix port's built-in machine
except ImportError:  # CPython
    pass

try:
    import micropython

    _heap_lock = micropython.heap_lock
    _heap_unlock = micropython.heap_unlock
    _schedule = micropython.schedule
except (ImportError, AttributeError):
    micropython = None
    _heap_lock = _heap_unlock = _schedule = None

import _thread
import time

try:
    from time import ticks_ms, ticks_us, ticks_add, ticks_diff, sleep_us
except ImportError:  # CPython: the same ticks arithmetic (wrap at 2**30)

    def ticks_us():
        return (time.monotonic_ns() // 1000) & ((1 << 30) - 1)

    def ticks_ms():
        return (time.monotonic_ns() // 1000000) & ((1 << 30) - 1)

    def ticks_add(t, d):
        return (t + d) & ((1 << 30) - 1)

    def ticks_diff(a, b):
        return ((a - b + (1 << 29)) & ((1 << 30) - 1)) - (1 << 29)

    def sleep_us(us):
        time.sleep(us / 1000000)


try:
    from os import getenv as _getenv
except ImportError:
    _getenv = None

_BOARDS = {"rp2": "rp2", "rp2040": "rp2", "esp32": "esp32"}
_board = ["rp2"]


def set_board(name):
    """Select the flavour this module models: "rp2" (or "rp2040") or "esp32"."""
    if name not in _BOARDS:
        raise ValueError("unknown board %r (use rp2 or esp32)" % (name,))
    _board[0] = _BOARDS[name]


def board():
    """The flavour in use: "rp2" or "esp32"."""
    return _board[0]


if _getenv is not None and _getenv("HELIX_MACHINE_BOARD"):
    set_board(_getenv("HELIX_MACHINE_BOARD"))


# -- IRQ mask ---------------------------------------------------------------------
_mask = _thread.allocate_lock()
_state = {"owner": None, "in_irq": 0, "irq_thread": None}
irq_errors = []  # (timer, exception) for every hard callback that raised


def _heap_is_locked():
    # Only asked while a hard callback runs: true in the callback's thread.
    if _heap_lock is None:
        return False
    try:
        bytearray(8)
    except MemoryError:
        return True
    return False


def _get_ident():
    return _thread.get_ident()


def disable_irq():
    """Mask hard timer callbacks; returns the state to give to enable_irq()."""
    if _state["in_irq"]:
        if _heap_lock is None:
            if _state["irq_thread"] == _get_ident():
                return 2  # inside a hard callback: already masked
        elif _heap_is_locked():
            return 2
    me = _get_ident()
    if _state["owner"] == me:
        return 0  # already masked by this thread
    _mask.acquire()
    _state["owner"] = me
    return 1


def enable_irq(state=1):
    """Undo the disable_irq() that returned state."""
    if state == 1:
        _state["owner"] = None
        _mask.release()


# -- Timer -------------------------------------------------------------------------
class Timer:
    """A periodic or one-shot timer driven by a host thread (see the module header)."""

    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, id=-1, mode=PERIODIC, period=-1, callback=None, freq=-1, hard=False, tick_hz=None):
        flavour = _board[0]
        if flavour == "rp2" and id != -1:
            raise ValueError("Timer doesn't exist (rp2 has virtual timers only: id -1)")
        if flavour == "esp32" and not (isinstance(id, int) and 0 <= id <= 3):
            raise ValueError("invalid Timer number %r (esp32: 0..3)" % (id,))
        self.id = id
        self._gen = 0
        self._running = False
        self.fired = 0  # callbacks run (hard) or scheduled (soft)
        self.soft_dropped = 0  # soft ticks dropped: the schedule queue was full
        self.masked_waits = 0  # hard ticks delayed by disable_irq()
        self.error = None  # the exception that disabled this timer
        if callback is not None or period != -1 or freq != -1:
            self.init(mode=mode, period=period, callback=callback, freq=freq, hard=hard)

    def init(self, mode=PERIODIC, period=-1, callback=None, freq=-1, hard=False):
        if hard and _board[0] == "esp32":
            raise ValueError("hard Timer callbacks are not supported on esp32")
        if freq != -1:
            if freq <= 0:
                raise ValueError("freq must be > 0")
            period_s = 1.0 / freq
        elif period != -1:
            if period < 0:
                raise ValueError("period must be >= 0")
            period_s = period / 1000.0
        else:
            raise ValueError("give period= (ms) or freq= (Hz)")
        if mode not in (Timer.ONE_SHOT, Timer.PERIODIC):
            raise ValueError("mode must be Timer.ONE_SHOT or Timer.PERIODIC")
        self.deinit()
        self._callback = callback
        self._hard = bool(hard)
        self._period_us = max(1, int(period_s * 1000000))
        self._mode = mode
        self._gen += 1
        self._running = True
        self.error = None
        _thread.start_new_thread(self._run, (self._gen,))

    def deinit(self):
        """Stop the timer; a callback already running finishes first (not waited for)."""
        self._running = False
        self._gen += 1

    def _run(self, gen):
        period = self._period_us
        due = ticks_add(ticks_us(), period)
        while self._running and self._gen == gen:
            wait = ticks_diff(due, ticks_us())
            if wait > 0:
                sleep_us(wait)
            if not (self._running and self._gen == gen):
                break
            due = ticks_add(due, period)
            if ticks_diff(due, ticks_us()) < 0:
                due = ticks_us()  # fell behind: no bursts of catch-up ticks
            if self._hard:
                self._fire_hard(gen)
            else:
                self._fire_soft()
            if self._mode == Timer.ONE_SHOT:
                self._running = False

    def _fire_hard(self, gen):
        if not _mask.acquire(0):
            self.masked_waits += 1
            _mask.acquire()
        if self._gen != gen:  # deinit while we waited
            _mask.release()
            return
        cb = self._callback
        if _heap_lock is None:
            _state["irq_thread"] = _get_ident()
        _state["in_irq"] = 1
        err = None
        if _heap_lock is None:
            try:
                cb(self)
            except BaseException as e:  # noqa: B036 - a board disables the IRQ and reports
                err = e
        else:
            _heap_lock()
            try:
                cb(self)
            except BaseException as e:  # noqa: B036 - a board disables the IRQ and reports
                err = e
            _heap_unlock()
        _state["in_irq"] = 0
        _mask.release()
        self.fired += 1
        if err is not None:
            self._running = False
            self.error = err
            irq_errors.append((self, err))
            print("hostmachine: hard Timer callback raised %r: timer disabled" % (err,))

    def _fire_soft(self):
        if _schedule is None:  # CPython: no scheduler, run it here
            self.fired += 1
            self._callback(self)
            return
        try:
            _schedule(self._callback, self)
        except RuntimeError:
            self.soft_dropped += 1  # esp32: dropped silently when the queue is full
            return
        self.fired += 1

    def __repr__(self):
        return "Timer(%r, running=%r, hard=%r)" % (self.id, self._running, getattr(self, "_hard", None))


# -- Pin ---------------------------------------------------------------------------
class Pin:
    """A GPIO that remembers what was written (`history`: every level, in order)."""

    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    PULL_UP = 1
    PULL_DOWN = 2

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id = id
        self.mode = mode
        self._value = 0
        self.history = []
        if value is not None:
            self.value(value)

    def value(self, v=None):
        if v is None:
            return self._value
        self._value = 1 if v else 0
        self.history.append(self._value)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def toggle(self):
        self.value(0 if self._value else 1)

    def __call__(self, v=None):
        return self.value(v)

    def __repr__(self):
        return "Pin(%r, value=%d)" % (self.id, self._value)
