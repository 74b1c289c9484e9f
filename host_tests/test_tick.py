# TickSource: Event.Tick through the IRQ path from machine.Timer (the host machine of
# tools/hostmachine, rp2 and esp32 flavours), from a host thread, or not at all.
# Nothing here asserts on timing precision: only order, monotonicity and exact counters.
import sys
import time

from test_hostmachine import hostmachine, HOSTMACHINE  # puts the host machine on sys.path first

import support
from support import raises

from helix_ipc import ChannelFull, EventBus, EventSubscription, EventTopic, TickSource
import helix_ipc.board as board
from test_board import load_profile

from helix_ipc._compat import ticks_add

# ticks_us wraps here: 2**30 on boards and on CPython (emulated), 2**62 on the 64-bit unix port
US_WRAP = ticks_add(0, -1) + 1


class Ticks:
    def __init__(self, bus):
        self.got = []
        bus.subscribe(EventSubscription("ticks", [EventTopic.TICK], self.got.append))


class FakeTimer:
    """machine.Timer stand-in: records init() and lets the test fire the callback."""

    PERIODIC = 1
    made = []

    def __init__(self, id):
        self.id = id
        self.kw = None
        FakeTimer.made.append(self)

    def init(self, mode=1, freq=-1, callback=None, hard=False):
        self.kw = (mode, freq, hard)
        self.callback = callback

    def deinit(self):
        self.callback = None

    def fire(self):
        self.callback(self)


class FakeMachine:
    Timer = FakeTimer


class Clock:
    """An injected ticks_us: returns the values set in `now`."""

    def __init__(self, start):
        self.now = start

    def __call__(self):
        return self.now


def without_drain(fn):
    """Run fn() where no scheduled drain can interleave: on MicroPython in a thread while
    the main thread (where scheduled callbacks run) blocks on a lock; on CPython directly
    (nothing is scheduled there)."""
    if not support.MICROPYTHON:
        return fn()
    _thread = support.need_threads()
    gate = _thread.allocate_lock()
    gate.acquire()
    box = [None]

    def body():
        try:
            box[0] = fn()
        finally:
            gate.release()

    _thread.start_new_thread(body, ())
    gate.acquire()
    return box[0]


def check_run(ticks, src, bus, ring=True):
    # ring=False: the host thread published the ticks itself (deliver=True)
    nums = [t.tick_number for t in ticks]
    stamps = [t.timestamp_ns for t in ticks]
    for i in range(1, len(nums)):
        assert nums[i] > nums[i - 1], "tick numbers must strictly increase"
        assert stamps[i] >= stamps[i - 1], "timestamps must be monotonic"
    s = src.stats()
    assert s.fired == s.delivered + s.lost, s
    assert s.delivered == len(ticks)
    assert s.gaps <= s.lost
    if ticks:
        assert nums[-1] == len(ticks) + s.gaps  # every gap in tick_number is counted
    b = bus.isr_stats()
    assert b.posted == b.delivered + b.dropped, b
    if ring and s.backend == "machine.Timer":
        assert b.dropped == s.lost
    elif ring:  # the host thread also skips periods it missed (counted as lost)
        assert b.dropped <= s.lost
    else:
        assert b.posted == 0, b  # nothing went through the IRQ ring


def test_bad_hz_refused():
    raises(TypeError, TickSource, "100")
    raises(TypeError, TickSource, 100.0)
    raises(TypeError, TickSource, True)
    raises(ValueError, TickSource, 0)
    raises(ValueError, TickSource, -5)
    e = raises(ValueError, TickSource, board.get("max_tick_hz") + 1)
    assert "hz" in str(e)
    esp = load_profile("esp32")
    raises(ValueError, TickSource, 5000, None, profile=esp)  # esp32 soft timers: <= 1000


def test_default_hz_from_board_profile():
    assert TickSource().hz == board.get("tick_hz")
    p = dict(board.host_profile())
    p["tick_hz"] = 250
    board.set_profile(p)
    try:
        assert TickSource().hz == 250
    finally:
        board.set_profile(None)


def test_timer_id_and_mode_come_from_the_profile():
    bus = EventBus()
    for name, tid, hard in (("rp2040", -1, True), ("esp32", 0, False)):
        del FakeTimer.made[:]
        src = TickSource(50, bus, machine=FakeMachine, profile=load_profile(name))
        src.start()
        t = FakeTimer.made[0]
        assert t.id == tid and t.kw == (FakeTimer.PERIODIC, 50, hard)
        assert src.stats().backend == "machine.Timer"
        src.stop()
        assert t.callback is None


def test_timestamp_widening_across_ticks_us_wraparound():
    bus = EventBus(isr_capacity=16)
    got = Ticks(bus)
    clock = Clock(US_WRAP - 2500)  # start 2.5 ms before ticks_us wraps
    src = TickSource(1000, bus, machine=FakeMachine, clock=clock)
    src.start()
    timer = FakeTimer.made[-1]
    for now in (US_WRAP - 1500, US_WRAP - 500, 500, 1500, 2500):  # wraps after the 2nd tick
        clock.now = now
        timer.fire()
    bus.poll()
    assert [t.timestamp_ns for t in got.got] == [1000000, 2000000, 3000000, 4000000, 5000000]
    assert [t.tick_number for t in got.got] == [1, 2, 3, 4, 5]
    # a tick timestamped earlier than the previous one never goes backwards
    clock.now = 2000
    timer.fire()
    bus.poll()
    assert got.got[-1].timestamp_ns == 5000000 and got.got[-1].tick_number == 6
    src.stop()


def test_many_wraparounds_keep_counting():
    bus = EventBus(isr_capacity=4)
    got = Ticks(bus)
    clock = Clock(0)
    src = TickSource(10, bus, machine=FakeMachine, clock=clock)
    src.start()
    timer = FakeTimer.made[-1]
    step = US_WRAP // 3  # < 2**29: unambiguous for ticks_diff
    for i in range(1, 10):
        clock.now = (i * step) % US_WRAP
        timer.fire()
        bus.poll()
    assert got.got[-1].timestamp_ns == 9 * step * 1000  # 3 wraps, still exact
    src.stop()


def test_lost_ticks_show_as_gap_and_counter():
    bus = EventBus(isr_capacity=2)
    got = Ticks(bus)
    clock = Clock(1000)
    src = TickSource(100, bus, machine=FakeMachine, clock=clock)
    src.start()
    timer = FakeTimer.made[-1]

    def five_ticks():
        for i in range(5):  # the ring holds 2: ticks 3, 4, 5 are lost
            clock.now += 10000
            timer.fire()

    without_drain(five_ticks)
    bus.poll()
    clock.now += 10000
    timer.fire()  # tick 6
    bus.poll()
    assert [t.tick_number for t in got.got] == [1, 2, 6]
    assert [t.timestamp_ns for t in got.got] == [10000000, 20000000, 60000000]
    s = src.stats()
    assert (s.fired, s.delivered, s.lost, s.gaps) == (6, 3, 3, 3)
    assert bus.isr_stats().dropped == 3
    check_run(got.got, src, bus)
    src.stop()


def test_restart_begins_a_new_run():
    bus = EventBus()
    got = Ticks(bus)
    clock = Clock(5000)
    src = TickSource(100, bus, machine=FakeMachine, clock=clock)
    src.start()
    src.start()  # already running: nothing happens
    t1 = FakeTimer.made[-1]
    clock.now = 15000
    t1.fire()
    src.stop()
    src.stop()
    assert src.stats().running is False
    clock.now = 900000
    src.start()
    t2 = FakeTimer.made[-1]
    assert t2 is not t1
    clock.now = 910000
    t2.fire()
    bus.poll()  # the first run's tick is widened against the first run's origin
    assert [(t.timestamp_ns, t.tick_number) for t in got.got] == [(10000000, 1), (10000000, 1)]
    assert src.stats().fired == 2
    src.stop()


def test_irq_callback_allocates_nothing():
    support.need_heap_lock()
    bus = EventBus(isr_capacity=8)
    got = Ticks(bus)
    src = TickSource(100, bus, machine=FakeMachine)
    src.start()
    support.assert_no_alloc(src._irq, None)
    support.assert_no_alloc(src._irq, None)
    for _ in range(1000):
        if len(got.got) == 2:
            break
        bus.poll()
        time.sleep(0.001)
    assert [t.tick_number for t in got.got] == [1, 2]
    src.stop()


def run_for(bus, ms):
    # The main loop: sleep a little, deliver what is queued (poll is a no-op when the
    # scheduled drain already did it).
    end = time.ticks_add(time.ticks_ms(), ms) if hasattr(time, "ticks_ms") else time.time() + ms / 1000
    while True:
        bus.poll()
        time.sleep(0.002)
        if hasattr(time, "ticks_ms"):
            if time.ticks_diff(end, time.ticks_ms()) <= 0:
                break
        elif time.time() >= end:
            break


def _machine_for_test(flavour):
    m = hostmachine(flavour)
    return m


def test_1khz_on_the_host_machine_rp2_hard_timer():
    m = _machine_for_test("rp2")
    bus = EventBus(isr_capacity=64)
    got = Ticks(bus)
    src = TickSource(1000, bus, machine=m, profile=load_profile("rp2040"))
    errors_before = len(m.irq_errors)
    src.start()
    timer = src._timer
    run_for(bus, 1000)
    src.stop()
    for _ in range(5):
        run_for(bus, 5)
    assert timer.error is None and len(m.irq_errors) == errors_before  # no allocation in the hard IRQ
    assert len(got.got) > 100  # it ran (no claim on precision)
    check_run(got.got, src, bus)


def test_esp32_profile_on_esp32_host_machine_soft_timer():
    try:
        import micropython  # noqa: F401
    except ImportError:
        support.skip("needs micropython.schedule for soft timer callbacks (MicroPython only)")
    m = _machine_for_test("esp32")
    try:
        bus = EventBus(isr_capacity=32)
        got = Ticks(bus)
        src = TickSource(500, bus, machine=m, profile=load_profile("esp32"))
        src.start()
        timer = src._timer
        assert timer.id == 0 and timer._hard is False
        run_for(bus, 300)
        src.stop()
        run_for(bus, 20)
        assert len(got.got) > 10
        check_run(got.got, src, bus)
        # soft ticks the schedule queue could not take never reached TickSource at all:
        # they are counted by the timer (as on the real port), not as tick gaps
        assert src.stats().fired == timer.fired
    finally:
        m.set_board("rp2")


def test_hard_timer_refused_on_esp32_machine():
    m = _machine_for_test("esp32")
    try:
        p = dict(load_profile("esp32"))
        p["timer_hard"] = True  # a wrong profile: the port refuses, as a real esp32 does
        src = TickSource(100, EventBus(), machine=m, profile=p)
        raises(ValueError, src.start)
        assert src.stats().running is False
    finally:
        m.set_board("rp2")


def test_host_thread_backend_posting_through_the_ring():
    support.need_threads()
    bus = EventBus(isr_capacity=64)
    got = Ticks(bus)
    src = TickSource(1000, bus, machine=None, deliver=False)
    src.error_hook = lambda where, error: None  # periods missed on a busy host: counted
    src.start()
    assert src.stats().backend == "thread"
    run_for(bus, 300)
    src.stop()
    run_for(bus, 10)
    n = len(got.got)
    run_for(bus, 20)
    assert len(got.got) == n  # stopped
    assert n > 10
    check_run(got.got, src, bus)
    src.start()  # restartable
    run_for(bus, 50)
    src.stop()
    run_for(bus, 10)
    assert got.got[-1].tick_number < n or len(got.got) > n


class Hook:
    def __init__(self, src):
        self.calls = []
        src.error_hook = self

    def __call__(self, where, error):
        self.calls.append((where, error))

    def lost(self):
        # ticks reported lost, from the messages "N tick(s) lost: ..."
        return sum(int(str(e).split(" ", 1)[0]) for w, e in self.calls if "lost" in str(e))


def test_host_thread_delivers_while_the_main_thread_sleeps():
    # Issue 11 #5: TickSource(hz=100) then time.sleep(1) delivered nothing on CPython
    # (nothing polled) and lost 36 of 100 on the unix port (no scheduled callbacks run
    # inside time.sleep). The tick thread now publishes each tick itself.
    support.need_threads()
    bus = EventBus(isr_capacity=8)  # a ring too small for the sleep: it is not used
    got = Ticks(bus)
    src = TickSource(100, bus, machine=None)
    hook = Hook(src)
    src.start()
    time.sleep(1)
    seen = len(got.got)  # before anything polls
    src.stop()
    assert seen > 0 and len(got.got) >= seen
    s = src.stats()
    assert s.backend == "thread" and s.fired == s.delivered + s.lost, s
    assert s.errors == 0
    assert hook.lost() == s.lost  # every period missed on a busy host was reported
    check_run(got.got, src, bus, ring=False)
    assert bus.poll() == 0  # nothing was left for a poll


def test_host_thread_handlers_run_in_the_tick_thread_and_may_stop_it():
    _thread = support.need_threads()
    bus = EventBus()
    src = TickSource(200, bus, machine=None)
    idents = []

    def on_tick(event):
        idents.append(_thread.get_ident())
        if len(idents) == 3:
            src.stop()  # from the tick thread itself: returns at once

    bus.subscribe(EventSubscription("t", [EventTopic.TICK], on_tick))
    src.start()
    for _ in range(5000):
        if not src.stats().running:
            break
        time.sleep(0.001)
    time.sleep(0.05)
    assert not src.stats().running
    assert len(idents) == 3 and idents[0] != _thread.get_ident()
    assert src.stats().delivered == 3


def test_failed_publish_in_the_tick_thread_is_counted_and_hooked():
    support.need_threads()

    def bad_tick(ts, n):
        raise ValueError("no tick %d" % n)

    bus = EventBus()
    src = TickSource(200, bus, machine=None, tick_class=bad_tick)
    hook = Hook(src)
    src.start()
    for _ in range(5000):
        if src.stats().errors >= 3:
            break
        time.sleep(0.001)
    src.stop()
    s = src.stats()
    failed = [e for w, e in hook.calls if isinstance(e, ValueError)]
    assert s.errors >= 3 and len(failed) == s.errors, (s, hook.calls)
    assert all(w == "TickSource publish" for w, e in hook.calls if isinstance(e, ValueError))
    assert str(failed[0]).startswith("no tick")


def test_lost_ticks_are_reported_to_the_error_hook():
    bus = EventBus(isr_capacity=2)
    got = Ticks(bus)
    clock = Clock(1000)
    src = TickSource(100, bus, machine=FakeMachine, clock=clock)
    hook = Hook(src)
    src.start()
    timer = FakeTimer.made[-1]

    def five_ticks():
        for i in range(5):
            clock.now += 10000
            timer.fire()

    without_drain(five_ticks)  # 2 queued, 3 lost
    assert hook.calls == []  # never from the IRQ side
    bus.poll()
    assert len(hook.calls) == 1 and hook.lost() == 3  # reported by the drain
    without_drain(five_ticks)  # 2 more queued, 3 more lost
    bus.poll()
    assert len(hook.calls) == 2 and hook.lost() == 6
    where, error = hook.calls[0]
    assert "100 Hz" in where and isinstance(error, ChannelFull) and "IRQ ring" in str(error)
    without_drain(five_ticks)
    src.stop()  # the last losses are reported at stop()
    assert hook.lost() == 9 == src.stats().lost
    bus.poll()  # the 2 still queued
    check_run(got.got, src, bus)


def test_default_error_hook_prints_one_line_on_stderr():
    if support.MICROPYTHON:
        support.skip("CPython only: sys.stderr is replaced to read what was printed")
    import io

    bus = EventBus(isr_capacity=1)
    src = TickSource(100, bus, machine=FakeMachine, clock=Clock(0))
    src.start()
    timer = FakeTimer.made[-1]
    timer.fire()
    timer.fire()  # lost
    old, sys.stderr = sys.stderr, io.StringIO()
    try:
        src.stop()
        out = sys.stderr.getvalue()
    finally:
        sys.stderr = old
    assert out.count("\n") == 1 and "TickSource 100 Hz" in out and "1 tick(s) lost" in out, out


def test_bad_bus_and_deliver_refused_at_construction():
    # Issue 11 #4: TickSource(hz=100, bus=42) failed only at start()
    e = raises(TypeError, TickSource, 100, 42)
    assert "bus" in str(e) and "publish_from_isr" in str(e)
    raises(TypeError, TickSource, 100, object())
    e = raises(TypeError, TickSource, 100, None, deliver="yes")
    assert "deliver" in str(e)
    TickSource(100, EventBus())  # fine


def test_no_timer_and_no_threads_only_start_complains():
    src = TickSource(100, EventBus(), machine=None, thread=None)
    e = raises(NotImplementedError, src.start)
    assert "machine.Timer" in str(e) and "_thread" in str(e)
    assert src.stats().running is False
    # a machine module without Timer counts as none
    src = TickSource(100, EventBus(), machine=object(), thread=None)
    raises(NotImplementedError, src.start)


STRIPPED = r"""
import sys
for name in ("_thread", "threading", "machine", "micropython"):
    sys.modules[name] = None  # importing them now raises ImportError
sys.path.insert(0, %r)
import helix_ipc
for mod in ("errors", "channels", "events", "bus", "isr", "board", "tick"):
    __import__("helix_ipc." + mod)
from helix_ipc import EventBus, Event, TickSource
from helix_ipc.channels import channel
bus = EventBus()
assert bus.publish_from_isr(Event.Interrupt, 1, 0)
assert bus.poll() == 1
tx, rx = channel(2)
tx.send(1)
src = TickSource()
try:
    src.start()
except NotImplementedError as e:
    print("OK", e)
del sys.modules["threading"]  # (blocked above; CPython looks it up at exit)
"""


def test_library_imports_without_machine_timer_and_threads():
    if support.MICROPYTHON:
        support.skip("CPython only: a subprocess with _thread/machine/micropython blocked in sys.modules")
    import subprocess

    lib = HOSTMACHINE.rsplit("/tools/", 1)[0] + "/lib"
    out = subprocess.run([sys.executable, "-c", STRIPPED % lib], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("OK TickSource needs machine.Timer or _thread"), out.stdout


def test_timer_ticks_during_a_long_sleep_are_counted_and_reported():
    # With machine.Timer (here the host machine's rp2 hard timer) ticks go through the
    # IRQ ring. The unix port runs no scheduled callbacks inside time.sleep() (CPython has
    # no scheduler at all), so a sleep longer than the ring holds loses ticks: every one
    # is counted (lost, gaps, the ring's dropped) and reported to the error hook.
    m = _machine_for_test("rp2")
    bus = EventBus(isr_capacity=4)
    got = Ticks(bus)
    src = TickSource(200, bus, machine=m, profile=load_profile("rp2040"))
    hook = Hook(src)
    src.start()
    time.sleep(0.3)  # ~60 periods, a ring of 4
    src.stop()
    for _ in range(5):
        run_for(bus, 5)
    s = src.stats()
    assert s.lost > 0 and hook.lost() == s.lost, (s, hook.calls)
    assert all("IRQ ring" in str(e) for w, e in hook.calls)
    check_run(got.got, src, bus)
