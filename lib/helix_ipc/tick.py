# helix_ipc.tick: TickSource, periodic Event.Tick from a hardware timer or a host thread.
#
# Contexts:
# - start()/stop()/stats(): task context.
# - The timer callback `_irq` is hard-IRQ safe (allocates nothing, never raises): it
#   counts the hardware tick (a small int that wraps at 2**29), reads ticks_us() and
#   posts both through bus.publish_from_isr. Give a bus's IRQ path one producer at a time.
# - The drain (scheduler / poll()) calls the run's converter, which widens the two small
#   ints into Event.Tick(timestamp_ns, tick_number): nanoseconds since start() and the
#   hardware tick count, both monotonic across ticks_us wraparound (2**30 us). A tick the
#   ring had no room for leaves a gap in tick_number, counted in stats().lost and .gaps.
# Backend: machine.Timer with the board profile's timer id and mode (rp2: virtual timer
# -1, hard; esp32: timer 0, soft), else a thread (_thread), else start() raises
# NotImplementedError. Importing this module needs neither.
#
# When ticks arrive without anyone polling:
# - machine.Timer (boards, and the unix port with tools/hostmachine): each tick is posted
#   to the bus's IRQ ring and delivered by the drain the bus schedules with
#   micropython.schedule, which a board runs between bytecodes and while it sleeps. The
#   unix port runs scheduled callbacks only while its main thread executes Python code,
#   NOT inside time.sleep(): there a main loop must sleep in short steps
#   (time.sleep_ms(10)) or call bus.poll(), or the ring (isr_capacity ticks) overflows.
# - The host thread (CPython, the unix port without a machine.Timer), deliver=True (the
#   default): the tick thread builds each Event.Tick and calls bus.publish itself, so
#   ticks arrive during time.sleep() and nothing has to poll. Handlers then run in the
#   tick thread, and it is a publisher of that bus: the bus takes one publishing thread
#   at a time, so do not publish on it (or poll() it) from another thread while the
#   source runs. deliver=False posts through the IRQ ring instead, as the timer does:
#   then bus.poll() (CPython, which has no scheduler) or the scheduled drain delivers.
# - Under asyncio: start() called from a task of a running event loop, with a backend
#   that posts through the IRQ ring (machine.Timer, deliver=False), also starts a task
#   running bus.pump(), which delivers each post as it arrives while the loop waits (the
#   unix port runs no scheduled callbacks inside its blocking poll; CPython has no
#   scheduler); stop() cancels it and delivers what is left. So polling is needed only
#   for a ring-posting source started outside asyncio on CPython, or on the unix port
#   whose main loop sleeps in time.sleep().
# - Periods the host thread could not keep (a handler slower than the period) are
#   skipped, not delivered in a burst: they count as lost and leave a gap in tick_number.
# Failures that cannot raise: ticks lost (the IRQ ring full, or periods skipped) count in
# stats().lost; a publish that raised in the tick thread counts in stats().errors; each is
# passed to `error_hook(where, error)` (None: one line on stderr) from task context: lost
# ticks when the next tick is delivered or at stop(). A hard IRQ never calls the hook.

from ._compat import const, ticks_us, ticks_diff, ticks_add, machine_module
from .errors import check_int

if False:  # names for the type comments only: mypy reads this, MicroPython compiles it away
    from typing import Any, Callable  # noqa: F401

_CMASK = const((1 << 29) - 1)
_AUTO = object()

_STAT_FIELDS = ("hz", "running", "backend", "fired", "delivered", "lost", "gaps", "errors")


class _Run:
    # One start()..stop() run: widens posted ticks in the drain (task context).
    # Its bound `make` is the `kind` the IRQ posts, so ticks still queued from an earlier
    # run are widened against that run's origin.

    def __init__(self, src, tick_class, t0):
        self._src = src
        self._tick = tick_class
        self._last_us = t0
        self._elapsed_us = 0
        self._last_n = 0
        self._number = 0
        self.make = self._make

    def _make(self, us, n):
        d = ticks_diff(us, self._last_us)
        if d > 0:  # never backwards
            self._elapsed_us += d
            self._last_us = us
        dn = (n - self._last_n) & _CMASK
        self._last_n = n
        self._number += dn
        src = self._src
        src._delivered += 1
        if dn > 1:
            src._gaps += dn - 1
        if src._lost != src._told:
            src._tell_lost()
        return self._tick(self._elapsed_us * 1000, self._number)


def _tick_class():
    from .events import Event

    return Event.Tick


class TickSource:
    """Event.Tick(timestamp_ns, tick_number) at `hz` (default: the board profile's
    tick_hz) on `bus` (default: the global bus), through the bus's IRQ path.

    start(), stop() (restartable: each start() begins a new run with timestamp 0 and
    tick_number counting from 1), stats(). `deliver` (host thread only): True (default)
    publishes each tick from the tick thread, False posts it through the IRQ ring (see
    the module header). `error_hook(where, error)`: lost ticks and failed publishes
    (None: one line on stderr). `machine`, `thread`, `clock`, `profile` and
    `tick_class` are injection points for tests and virtual boards."""

    def __init__(self, hz=None, bus=None, machine=_AUTO, thread=_AUTO, clock=None, profile=None,
                 tick_class=None, deliver=True):
        if bus is not None and not callable(getattr(bus, "publish_from_isr", None)):
            raise TypeError("bus must be an EventBus (with publish_from_isr), got %s" % type(bus).__name__)
        if not isinstance(deliver, bool):
            raise TypeError("deliver must be a bool, got %s" % type(deliver).__name__)
        from .board import profile as _profile, validate  # with the first TickSource

        p = _profile() if profile is None else validate(profile)
        if hz is None:
            hz = p["tick_hz"]
        check_int(hz, "hz", 1, p["max_tick_hz"], " on " + p["name"])
        self.hz = hz
        self._profile = p
        self._bus = bus
        self._machine = machine
        self._thread = thread
        self._clock = ticks_us if clock is None else clock
        self._tick_class = tick_class
        self._deliver = deliver
        self.error_hook = None  # type: Callable[[str, Any], Any] | None
        self._running = False
        self._backend = None
        self._timer = None
        self._gen = 0  # host thread generation: a thread runs while it matches
        self._thread_gen = -1  # the generation whose thread is still looping
        # IRQ-side state, created before any timer exists
        self._post = None  # type: Callable[[Any, Any, int], bool] | None  # bus.publish_from_isr(kind, ticks_us, n)
        self._make = None  # type: Callable[[Any, int], Any] | None  # the run's converter (us, n)
        self._n = 0
        self._fired_base = 0
        self._lost = 0
        # drain-side counters
        self._delivered = 0
        self._gaps = 0
        self._told = 0  # the value of _lost last passed to the error hook
        self._errors = 0  # publishes that raised in the tick thread
        self._thread_id = None  # type: int | None
        self._tmod = None  # type: Any  # the _thread module the host thread was started with
        self._irq_cb = self._irq  # made once: taking a bound method in an IRQ allocates
        self._pump = None  # type: Any  # (task, alive) of the bus's pump, when start() ran in an asyncio task

    # -- IRQ side -------------------------------------------------------------------
    def _irq(self, _timer):
        n = (self._n + 1) & _CMASK
        self._n = n
        post = self._post  # None only before the first start(): a tick then is lost
        if post is None or not post(self._make, self._clock(), n):
            self._lost = (self._lost + 1) & _CMASK

    # -- task side ------------------------------------------------------------------
    def start(self):
        """Start ticking (does nothing when running). Raises NotImplementedError when
        this interpreter has neither machine.Timer nor _thread."""
        if self._running:
            return
        machine = machine_module() if self._machine is _AUTO else self._machine
        timer_class = getattr(machine, "Timer", None) if machine is not None else None
        thread = None
        if timer_class is None:
            thread = _thread_module() if self._thread is _AUTO else self._thread
            if thread is None:
                raise NotImplementedError(
                    "TickSource needs machine.Timer or _thread; this interpreter has neither"
                )
        if self._tick_class is None:
            self._tick_class = _tick_class()
        if self._post is None:
            bus = self._bus
            if bus is None:
                from .bus import global_event_bus

                bus = self._bus = global_event_bus()
            self._post = bus.publish_from_isr
        # a new run: everything the IRQ side reads exists before the timer starts
        self._fired_base += self._n
        self._n = 0
        self._make = _Run(self, self._tick_class, self._clock()).make
        if timer_class is not None:
            self._start_timer(timer_class)
        else:
            self._start_thread(thread)
        self._running = True
        if timer_class is not None or not self._deliver:  # ticks go through the IRQ ring
            self._pump = _pump_for(self._bus)

    def _start_timer(self, timer_class):
        p = self._profile
        timer = timer_class(p["timer_id"])
        if p["timer_hard"]:
            timer.init(mode=timer_class.PERIODIC, freq=self.hz, callback=self._irq_cb, hard=True)
        else:
            timer.init(mode=timer_class.PERIODIC, freq=self.hz, callback=self._irq_cb)
        self._timer = timer
        self._backend = "machine.Timer"

    def _start_thread(self, thread):
        self._gen += 1
        self._thread_gen = self._gen
        self._backend = "thread"
        self._tmod = thread
        thread.start_new_thread(self._thread_main, (self._gen,))

    def _thread_main(self, gen):
        # The host timer: one tick per period, never in bursts: periods it could not keep
        # (a slow handler, a busy host) are skipped and counted as lost.
        import time

        self._thread_id = self._tmod.get_ident()
        sleep_us = getattr(time, "sleep_us", None)
        period = 1000000 // self.hz
        due = ticks_add(ticks_us(), period)
        while self._gen == gen:
            wait = ticks_diff(due, ticks_us())
            if wait > 0:
                if sleep_us is not None:
                    sleep_us(wait)
                else:
                    time.sleep(wait / 1000000)
            if self._gen != gen:
                break
            if self._deliver:
                self._publish_tick()
            else:
                self._irq(None)
            due = ticks_add(due, period)
            late = ticks_diff(ticks_us(), due)
            if late >= 0:  # whole periods missed: skipped, a gap in tick_number
                skip = late // period + 1
                self._n = (self._n + skip) & _CMASK
                self._lost = (self._lost + skip) & _CMASK
                due = ticks_add(due, skip * period)
        if self._thread_gen == gen:
            self._thread_gen = -1

    def _publish_tick(self):
        # deliver=True: this thread publishes the tick (task context for the bus).
        n = (self._n + 1) & _CMASK
        self._n = n
        make = self._make  # set by start() before this thread runs
        bus = self._bus  # type: Any
        try:
            bus.publish(make(self._clock(), n))  # type: ignore[misc]
        except Exception as e:  # the bus raised (NestingTooDeep, a bad tick_class...)
            self._errors = (self._errors + 1) & _CMASK
            self._hook("TickSource publish", e)

    def _tell_lost(self):
        # Task context: pass the ticks lost since the last report to the hook.
        lost = (self._lost - self._told) & _CMASK
        self._told = self._lost
        from .errors import ChannelFull

        why = "periods the tick thread missed" if self._backend == "thread" and self._deliver else (
            "the bus's IRQ ring was full")
        self._hook("TickSource %d Hz" % self.hz, ChannelFull("%d tick(s) lost: %s" % (lost, why)))

    def _hook(self, where, error):
        hook = self.error_hook
        if hook is not None:
            try:
                hook(where, error)
                return
            except Exception as e:  # a hook that raises is printed too
                where, error = "TickSource error_hook", e
        from .bus import print_error

        print_error(where, error)

    def stop(self):
        """Stop ticking (does nothing when stopped). Ticks already posted are still
        delivered by the bus's drain."""
        if not self._running:
            return
        self._running = False
        if self._timer is not None:
            self._timer.deinit()
            self._timer = None
        else:
            gen = self._gen
            self._gen += 1
            if self._tmod.get_ident() != self._thread_id:  # not from a handler in the tick thread
                _wait_until_not(self, gen)
        pump = self._pump
        if pump is not None:  # what it had not delivered yet is delivered here
            self._pump = None
            from .aio import cancel, end_pump

            cancel([pump[0]])
            end_pump(self._bus, pump[1])  # also when stop() runs inside it (a handler), or after a Ctrl-C left its loop
            self._bus.poll()  # type: ignore[union-attr]
        if self._lost != self._told:
            self._tell_lost()

    def stats(self):
        """hz, running, backend, fired (hardware ticks), delivered (Tick events built),
        lost (ticks the IRQ ring refused, or periods the host thread skipped), gaps (tick
        numbers skipped in delivered ticks), errors (publishes that raised in the tick
        thread)."""
        from ._record import Record

        return Record(
            _STAT_FIELDS,
            (self.hz, self._running, self._backend, self._fired_base + self._n,
             self._delivered, self._lost, self._gaps, self._errors),
        )

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        self.stop()


def _pump_for(bus):
    # Inside a running asyncio task: a task pumping the bus's IRQ ring (helix_ipc.aio),
    # so ticks arrive while the loop waits, with or without a scheduler. Else None.
    import sys

    if "asyncio" not in sys.modules:  # nothing imported asyncio: no loop can be running
        return None
    from .aio import start_pump

    alive = [True, None]
    task = start_pump(bus, alive)
    return None if task is None else (task, alive)


def _thread_module():
    try:
        import _thread
    except ImportError:
        return None
    return _thread


def _wait_until_not(src, gen):
    # Wait (at most ~2 s) for the host thread of generation gen to leave its loop.
    import time

    for _ in range(2000):
        if src._thread_gen != gen:
            return
        time.sleep(0.001)
