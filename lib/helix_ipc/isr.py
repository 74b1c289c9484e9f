# helix_ipc.isr: the IRQ post ring behind EventBus.publish_from_isr / poll / isr_stats.
#
# Contexts:
# - `IsrQueue.post(kind, a, b)` is hard-IRQ safe: it allocates nothing, takes no lock and
#   never raises. It writes the three words of a slot (kind, a, b) into one list
#   preallocated with three words per slot and advances the write index, which only the
#   posting side writes. One producer context at a time (IRQ handlers that cannot preempt
#   each other, or one thread): it is single-producer.
# - The drain (the `micropython.schedule` callback, or `poll()`) owns the read index: it
#   builds each event and hands it to the bus's publish, in posting order, so it runs
#   where publish may run: one thread per bus. With a scheduler (MicroPython) the drain
#   runs on the main thread, so call poll() there too; on CPython (no scheduler) call it
#   from one thread. One drain at a time: a nested poll() (from a handler) returns 0.
# - `kind` is an event class or a function building an event from (a, b). A post whose
#   kind is not callable (None, a str) returns False and is queued as a refusal: the
#   drain counts it in `errors` and reports a TypeError naming it to the error hook, as
#   it does a build or publish that raised.
# - At most one drain is scheduled at a time (the pending flag). A full schedule queue
#   (RuntimeError, no message when the heap is locked) counts in `schedule_failures`; the
#   next post or poll() retries. A scheduled drain delivers at most DRAIN_BATCH events, then
#   schedules the next one, so a flood of posts does not hold the scheduler.
# - post and poll are native (@micropython.native): frames on the C stack, so their
#   try/except costs no heap frame; attribute loads are hoisted out of the drain loop.
# Counters wrap at 2**29 so they stay small ints on 32-bit boards.

import sys

from ._compat import const, micropython, schedule as _mp_schedule
from ._record import Record
from .errors import check_int
from .events import Event

_CMASK = const((1 << 29) - 1)
DRAIN_BATCH = const(16)  # events per scheduled drain run
MAX_CAPACITY = const(4096)

_STAT_FIELDS = ("posted", "delivered", "dropped", "schedule_failures", "high_water", "errors", "capacity")

_DEFAULT = object()  # "use micropython.schedule" (None means: never schedule, poll only)
_Shutdown = Event.Shutdown  # built without fields
_Custom = Event.Custom  # built from its name alone when b == 0
_callable = callable  # a module global: found in one dict probe, a builtin takes two


def _refused(kind, b):
    # The drain's "build" of a post whose kind was not callable: reported as a failure.
    raise TypeError("publish_from_isr: kind must be an event class, got %r" % (kind,))


def check_capacity(capacity):
    """Raise TypeError/ValueError unless capacity is an int in 1..MAX_CAPACITY."""
    check_int(capacity, "isr_capacity", 1, MAX_CAPACITY)


def _print(where, error):
    # The default report of an IsrQueue on its own (a bus passes its error_hook).
    print("helix_ipc: %s: %s: %s" % (where, type(error).__name__, error), file=sys.stderr)


class IsrQueue:
    """A preallocated ring of (kind, a, b) posts drained into `publish(event)`.

    The drain builds `kind()` for Event.Shutdown, `kind(a)` for Event.Custom when b == 0
    (no data), else `kind(a, b)`. `schedule` schedules the drain (default
    micropython.schedule; None: nothing is scheduled and poll() drains). `report(where,
    error)` receives the drain's failures with the exception object."""

    def __init__(self, capacity, publish, schedule=_DEFAULT, report=_print):
        check_capacity(capacity)
        size = 1
        while size < capacity:
            size <<= 1
        self._ring = [None] * (3 * size)  # type: list  # slot i: [3i] kind, [3i+1] a, [3i+2] b
        self._mask = size - 1
        self._cap = capacity
        self._w = 0  # written by the posting side only
        self._r = 0  # written by the drain only
        self._dropped = 0  # posting side: ring full
        self._hw = 0  # drain side: the most posts a drain found queued when it began (a post
        # dropped because the ring was full means the high water is the capacity)
        self._sched_fail = 0  # posting side
        self._failed = 0  # drain side: refused posts, and posts whose build or publish raised
        self._publish = publish
        self._report = report
        self._schedule = _mp_schedule if schedule is _DEFAULT else schedule
        # With no scheduler a drain is "always pending": post() never tries to schedule.
        self._pending = self._schedule is None
        self._draining = False
        self._drain_cb = self.poll  # made once: taking a bound method in an IRQ allocates

    # -- posting side (hard-IRQ safe) -------------------------------------------
    @micropython.native
    def post(self, kind, a=0, b=0):
        """Queue one event; False when it was dropped: the ring was full (counted in
        `dropped`) or kind is not callable (queued as a refusal, which the drain reports
        and counts in `errors`)."""
        w = self._w
        if (w - self._r) & _CMASK >= self._cap:
            self._dropped = (self._dropped + 1) & _CMASK
            ok = False
        else:
            ok = _callable(kind)
            if not ok:
                a = kind
                kind = _refused
            i = (w & self._mask) * 3
            ring = self._ring
            ring[i] = kind
            ring[i + 1] = a
            ring[i + 2] = b
            self._w = (w + 1) & _CMASK
        if not self._pending:  # schedule one drain (inline: a call costs more than this)
            self._pending = True
            try:
                self._schedule(self._drain_cb, 0)
            except RuntimeError:  # queue full (no message when the heap is locked)
                self._pending = False
                self._sched_fail = (self._sched_fail + 1) & _CMASK
        return ok

    def _kick(self):
        # Schedule one drain, as post() does. RuntimeError is "schedule queue full":
        # counted; the next post or poll() retries.
        self._pending = True
        try:
            self._schedule(self._drain_cb, 0)
        except RuntimeError:
            self._pending = False
            self._sched_fail = (self._sched_fail + 1) & _CMASK

    # -- drain side (task context) ---------------------------------------------
    @micropython.native
    def poll(self, scheduled=None):
        """Deliver the posts queued now, oldest first; returns how many were taken (0
        inside another drain: a nested call). The scheduler calls it with 0: then it takes
        at most DRAIN_BATCH and schedules itself again for the rest."""
        if self._draining:
            return 0
        self._draining = True
        if scheduled is not None:
            self._pending = False
        r = self._r
        w = self._w  # posts arriving meanwhile are left for the next drain
        q = (w - r) & _CMASK  # queued now; only a drain lowers it
        if q > self._hw:
            self._hw = q
        if scheduled is not None and q > DRAIN_BATCH:
            w = (r + DRAIN_BATCH) & _CMASK
        ring = self._ring
        mask = self._mask
        publish = self._publish
        while r != w:
            i = (r & mask) * 3
            kind = ring[i]
            a = ring[i + 1]
            b = ring[i + 2]
            r = (r + 1) & _CMASK
            self._r = r  # the slot is free; a post that fails below is reported, not retried
            try:
                if kind is _Shutdown:
                    publish(kind())
                elif kind is _Custom and b == 0:
                    publish(kind(a))
                else:
                    publish(kind(a, b))
            except Exception as e:
                self._fail(kind, e)
            except BaseException as e:  # KeyboardInterrupt, SystemExit: propagate
                self._draining = False
                raise e  # a bare raise is not supported in native code
        self._draining = False
        if scheduled is not None and r != self._w and not self._pending:
            self._kick()  # the rest after the other scheduled callbacks
        return q if q < DRAIN_BATCH or scheduled is None else DRAIN_BATCH

    def _fail(self, kind, error):
        self._failed = (self._failed + 1) & _CMASK
        self._report("isr drain", error)

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
                self._cap if dropped else max(self._hw, len(self)),  # a drop means it was full
                self._failed,
                self._cap,
            ),
        )

    def __len__(self):
        return (self._w - self._r) & _CMASK
