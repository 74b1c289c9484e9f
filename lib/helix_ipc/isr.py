# helix_ipc.isr: the IRQ post ring behind EventBus.publish_from_isr / poll / isr_stats.
#
# Contexts:
# - `IsrQueue.post(kind, a, b)` is hard-IRQ safe: it allocates nothing, takes no lock and
#   never raises. It writes three preallocated parallel lists (kinds, a, b) and advances
#   the write index, which only the posting side writes. Give it one producer at a time
#   (an IRQ handler, or one thread): like a channel's send_from_isr it is single-producer.
# - The drain (a `micropython.schedule` callback, or `poll()` from the main loop or one
#   worker thread) owns the read index: it builds the events and hands them to the bus's
#   publish in posting order. One drain runs at a time; a nested poll() returns 0.
# Counters wrap at 2**29 so they stay small ints on 32-bit boards.

from ._compat import const, new_lock, schedule as _mp_schedule
from ._record import Record
from .errors import check_int

_CMASK = const((1 << 29) - 1)
MAX_CAPACITY = const(4096)

_STAT_FIELDS = ("posted", "delivered", "dropped", "schedule_failures", "high_water", "errors", "capacity")

if False:  # names for the type comments only: mypy reads this, MicroPython compiles it away
    from typing import Any  # noqa: F401

_DEFAULT = object()  # "use micropython.schedule" (None means: never schedule, poll only)


def check_capacity(capacity):
    """Raise TypeError/ValueError unless capacity is an int in 1..MAX_CAPACITY."""
    check_int(capacity, "isr_capacity", 1, MAX_CAPACITY)


class IsrQueue:
    """A preallocated ring of (kind, a, b) posts drained into `publish(event)`.

    The drain turns a post into an event (task context): `nullary()` when kind is
    `nullary` (Event.Shutdown), `custom(a)` when kind is `custom` and b == 0
    (Event.Custom without data), else `kind(a, b)`, or `build(kind, a, b)` when a
    build function is given. `schedule` is the function that schedules the drain
    (default `micropython.schedule`; None: nothing is scheduled and poll() drains)."""

    def __init__(self, capacity, publish, build=None, schedule=_DEFAULT, nullary=None, custom=None):
        check_capacity(capacity)
        size = 1
        while size < capacity:
            size <<= 1
        self._kinds = [None] * size  # type: list[Any]  # whatever post() was given as kind
        self._a = [0] * size
        self._b = [0] * size
        self._mask = size - 1
        self._cap = capacity
        self._w = 0  # written by the posting side only
        self._r = 0  # written by the drain only
        self._dropped = 0  # posting side
        self._hw = 0  # posting side
        self._sched_fail = 0  # posting side
        self._failed = 0  # drain side: posts whose build or publish raised
        self.last_error = None
        self._publish = publish
        self._build = build
        self._nullary = nullary
        self._custom = custom
        if schedule is _DEFAULT:
            schedule = _mp_schedule
        self._schedule = schedule
        # With no scheduler a drain is "always pending": post() never tries to schedule.
        self._pending = schedule is None
        self._drain_cb = self._scheduled_drain  # made once: taking it in an IRQ allocates
        self._lock = new_lock()
        self._draining = False

    # -- posting side (hard-IRQ safe) -------------------------------------------
    def post(self, kind, a=0, b=0):
        """Queue one event; False when the ring is full (the post is counted as dropped)."""
        w = self._w
        n = (w - self._r) & _CMASK
        if n >= self._cap:
            return self._drop()
        i = w & self._mask
        self._kinds[i] = kind
        self._a[i] = a
        self._b[i] = b
        self._w = (w + 1) & _CMASK
        if n >= self._hw:
            self._hw = n + 1
        if not self._pending:
            self._kick()
        return True

    def _drop(self):
        self._dropped = (self._dropped + 1) & _CMASK
        if not self._pending:
            self._kick()  # the last schedule failed: try again so the ring empties
        return False

    def _kick(self):
        # Schedule one drain. RuntimeError is "schedule queue full" (no message when the
        # heap is locked): count it; the next post or poll() retries.
        self._pending = True
        try:
            self._schedule(self._drain_cb, 0)
        except RuntimeError:
            self._pending = False
            self._sched_fail = (self._sched_fail + 1) & _CMASK

    # -- drain side (task context) ---------------------------------------------
    def _scheduled_drain(self, _arg):
        self._pending = False
        self.poll()

    def poll(self):
        """Deliver every queued post now, oldest first; returns how many were taken.
        Returns 0 when another drain is running (a nested call, or another thread)."""
        lock = self._lock
        n = 0
        while self._r != self._w:
            if lock is not None:
                if not lock.acquire(0):
                    return n
            elif self._draining:
                return n
            self._draining = True
            r0 = self._r
            try:
                self._drain()
            except Exception as e:  # a bad kind, or publish refused the event
                self._failed = (self._failed + 1) & _CMASK
                self.last_error = e
            finally:
                self._draining = False
                if lock is not None:
                    lock.release()
            n += (self._r - r0) & _CMASK
            # loop: posts that arrived meanwhile are taken too, and a failed one is skipped
        return n

    def _drain(self):
        # Caller holds the drain. Reads a slot completely before freeing it.
        kinds = self._kinds
        aa = self._a
        bb = self._b
        build = self._build
        publish = self._publish
        nullary = self._nullary
        custom = self._custom
        r = self._r
        while r != self._w:
            i = r & self._mask
            kind = kinds[i]
            a = aa[i]
            b = bb[i]
            r = (r + 1) & _CMASK
            self._r = r  # slot free; a post that raises below is skipped, not retried
            if kind is nullary:
                publish(kind())
            elif kind is custom and b == 0:
                publish(kind(a))
            elif build is None:
                publish(kind(a, b))
            else:
                publish(build(kind, a, b))

    def stats(self):
        """posted, delivered, dropped, schedule_failures, high_water, errors, capacity."""
        dropped = self._dropped
        return Record(
            _STAT_FIELDS,
            (
                (self._w + dropped) & _CMASK,
                (self._r - self._failed) & _CMASK,
                dropped,
                self._sched_fail,
                self._hw,
                self._failed,
                self._cap,
            ),
        )

    def __len__(self):
        return (self._w - self._r) & _CMASK
