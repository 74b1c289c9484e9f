# The firmware (firmware/*.py) on the host: it starts from the board profile, ticks,
# answers requests, survives a crashing module, and stops cleanly. Also keeps the mip
# package.json in step with the library's files.
import sys

import support

_FW = __file__.rsplit("/", 2)[0] + "/firmware" if "/" in __file__ else "../firmware"
_ROOT = _FW.rsplit("/", 1)[0]
if _FW not in sys.path:
    sys.path.insert(0, _FW)


def _fresh_system():
    # A System on a private bus and router (not the globals), so tests do not interfere.
    import helix_app
    from helix_ipc import EventBus, MessageRouter, ModuleHost

    s = helix_app.System()
    s.bus = EventBus()
    s.router = MessageRouter()
    s.host = ModuleHost(s.bus, s.router)
    return s


def _wait_ticks(s, n):
    import time

    for _ in range(3000):
        s.service()
        if s.ticks.stats().delivered >= n:
            return
        time.sleep(0.001)
    raise AssertionError("no %d ticks delivered: %r" % (n, s.ticks.stats()))


def test_system_ticks_and_answers_requests():
    support.need_threads()
    from helix_ipc import Request, ModuleAddress, Response

    s = _fresh_system()
    s.start(hz=200)
    try:
        assert s.running and sorted(s.host.loaded()) == ["heartbeat", "stats"]
        _wait_ticks(s, 20)
        r = s.router.send("stats", Request(ModuleAddress.Name("t"), "get_stats"))
        assert isinstance(r, Response.Success), r
        fields = dict(kv.split("=") for kv in r.data.decode().split(","))
        assert int(fields["ticks"]) >= 20 and int(fields["events"]) >= int(fields["ticks"])
        assert s.router.send("heartbeat", Request(ModuleAddress.Name("t"), "nope")) is Response.NOT_SUPPORTED
    finally:
        s.stop()
    t = s.ticks.stats()
    assert not t.running and t.fired == t.delivered + t.lost
    # stopped: modules still answer; a restart resumes ticking without reloading
    assert s.router.send("stats", Request(ModuleAddress.Name("t"), "get_stats")).is_success
    s.start()
    _wait_ticks(s, t.delivered + 5)
    assert sorted(s.host.loaded()) == ["heartbeat", "stats"]
    shutdowns = []
    from helix_ipc import EventSubscription, EventTopic
    s.bus.subscribe(EventSubscription("watch", [EventTopic.SHUTDOWN], shutdowns.append))
    s.shutdown()
    assert not s.ticks.stats().running and len(shutdowns) == 1
    assert s.host.loaded() == [] and s.router.module_count() == 0 and s.bus.subscription_count() == 1


def test_crashing_module_does_not_stop_the_others():
    support.need_threads()
    import helix_examples
    from helix_ipc import Module, EventTopic

    class Crashy(Module):
        name = "crashy"
        topics = [EventTopic.TICK]

        def handle_event(self, event):
            raise RuntimeError("boom %d" % event.tick_number)

    class BadInit(Module):
        name = "badinit"

        def init(self, ctx):
            raise OSError("no such sensor")

    s = _fresh_system()
    errors = []
    s.bus.error_hook = lambda name, what: errors.append(name)
    stats = helix_examples.Stats()
    s.start(modules=[Crashy(), BadInit(), stats], hz=200)
    try:
        _wait_ticks(s, 10)
    finally:
        s.shutdown()
    assert "badinit" in s.failed and "no such sensor" in s.failed["badinit"]
    assert stats.ticks >= 10 and len(errors) >= 10 and len(set(errors)) == 1 and "crashy" in errors[0], errors


def test_keyboard_interrupt_stops_cleanly():
    support.need_threads()
    import helix_app

    s = _fresh_system()
    calls = [0]

    def service(max_per_module=8):
        calls[0] += 1
        if calls[0] == 5:
            raise KeyboardInterrupt
        return 0

    s.service = service
    saved = helix_app.system
    helix_app.system = s
    try:
        helix_app.run(hz=100, use_asyncio=False)  # the polled loop: returns after the Ctrl-C, having stopped the system
    finally:
        helix_app.system = saved
    assert calls[0] == 5 and not s.running and not s.ticks.stats().running
    assert sorted(s.host.loaded()) == ["heartbeat", "stats"]  # still there to ask
    s.shutdown()


class _Capture:
    """print() and the System's error lines, captured (builtins.print swapped)."""

    def __init__(self, system=None):
        self.lines = []
        self.errors = []
        self.system = system

    def __enter__(self):
        import builtins

        self._print = builtins.print
        builtins.print = lambda *a, **k: self.lines.append(" ".join(str(x) for x in a))
        if self.system is not None:
            self.system.out = self.errors.append
        return self

    def __exit__(self, *exc):
        import builtins

        builtins.print = self._print

    def text(self):
        return "\n".join(self.lines)


class _App:
    """helix_app.system replaced by `system` (and helix_app.ticks_ms by a clock the
    test moves, when given) for the duration of a with block."""

    def __init__(self, system, clock=None):
        self.system = system
        self.clock = clock

    def __enter__(self):
        import helix_app

        self._saved = helix_app.system, helix_app.ticks_ms
        helix_app.system = self.system
        if self.clock is not None:
            helix_app.ticks_ms = lambda: self.clock[0]
        return self

    def __exit__(self, *exc):
        import helix_app

        helix_app.system, helix_app.ticks_ms = self._saved


class _FakeTimer:
    # A machine.Timer whose ticks the test fires by hand (fire(n)).
    PERIODIC = 1

    def __init__(self, timer_id):
        self.callback = None
        _FakeMachine.timers.append(self)

    def init(self, mode=None, freq=None, callback=None, hard=False):
        self.callback = callback

    def deinit(self):
        self.callback = None


class _FakeMachine:
    Timer = _FakeTimer
    timers = []

    @classmethod
    def fire(cls, bus, n):
        timer = cls.timers[-1]
        for i in range(n):
            timer.callback(timer)
            if i % 8 == 7:
                bus.poll()  # the ring never overflows: every tick is delivered
        bus.poll()


def _hand_ticked_system(clock):
    from helix_ipc import TickSource

    s = _fresh_system()
    s.ticks = TickSource(hz=100, bus=s.bus, machine=_FakeMachine)
    s.out = lambda text: None
    with _App(s, clock):
        s.start(modules=[])
    return s


def test_drift_after_a_restart_counts_only_the_current_run():
    # hx.start(); 1 s; hx.stop(); hx.start(); 0.5 s; hx.status() showed "drift 100
    # ticks": fired counted since the source was made, uptime since the last start.
    import hx

    clock = [1000]
    s = _hand_ticked_system(clock)
    with _App(s, clock):
        _FakeMachine.fire(s.bus, 100)
        clock[0] += 1000
        assert s.drift() == 0 and s.run_ticks() == 100
        s.stop()
        clock[0] += 3000  # stopped for a while: neither ticks nor uptime advance
        assert s.drift() == 0 and s.uptime_ms() == 1000
        s.start()
        _FakeMachine.fire(s.bus, 50)
        clock[0] += 500
        assert s.uptime_ms() == 500 and s.run_ticks() == 50 and s.drift() == 0, (s.run_ticks(), s.drift())
        assert s.ticks.stats().delivered == 150 and s.runs == 2
        with _Capture() as cap:
            hx.status()
        assert "this run: fired 50 in 500 ms, drift +0 ticks" in cap.text(), cap.text()
        _FakeMachine.fire(s.bus, 45)  # 5 ticks late
        clock[0] += 500
        assert s.drift() == -5
        s.stop()


def test_status_prints_the_system_and_every_counter():
    support.need_threads()
    import hx

    s = _fresh_system()
    with _App(s):
        with _Capture(s) as cap:
            s.start(hz=100)
            try:
                _wait_ticks(s, 3)
                hx.status()
                r = hx.ask("stats", "get_stats")
            finally:
                s.shutdown()
    text = cap.text()
    for needle in ("modules (2)", "heartbeat", "subscriptions (2)", "TICK", "running, up", "(run 1)",
                   # every counter of the bus, the IRQ ring, the router and the ticks
                   "bus: events_dispatched ", "events_dropped ", "handler_errors ",
                   "irq ring: posted ", "delivered ", "dropped ", "schedule_failures ", "high_water ",
                   "router: messages_routed ", "messages_refused ", "callback_errors ", "messages_discarded ",
                   "ticks: 100 Hz", "fired ", "lost ", "gaps ", "this run: fired ", "drift ",
                   "errors reported: bus 0 router 0 ticks 0"):
        assert needle in text, (needle, text)
    assert r.is_success and cap.lines[-1].startswith("stats get_stats -> ticks="), cap.lines


def test_status_of_a_system_never_started_says_what_to_do():
    # `mpremote exec` soft-resets the board, main.py does not run: the REPL sees an
    # empty system, and hx.status() must say so and how to reach the running one.
    import helix_app
    import hx

    from helix_ipc import ModuleNotFound

    s = _fresh_system()
    with _App(s):
        with _Capture() as cap:
            hx.status()
            support.raises(ModuleNotFound, hx.ask, "stats", "get_stats")
    text = cap.text()
    assert cap.lines[-1] == "hx: no module 'stats': the system was not started since the last reset" \
        " (hx.status() says more)", cap.lines
    assert ": NOT RUNNING" in cap.lines[0], text
    for needle in ("soft-reset", "main.py does not run", 'mpremote resume exec "import hx; hx.status()"',
                   "hx.start()", "helix_app.run()", "modules (0)", "ticks: no tick source yet"):
        assert needle in text, (needle, text)
    assert helix_app.system is not s  # restored


def test_hx_start_returns_none_and_says_what_runs():
    support.need_threads()
    import hx

    s = _fresh_system()
    with _App(s):
        with _Capture(s) as cap:
            try:
                assert hx.start(hz=50) is None  # nothing like <System object at ...> echoed at the REPL
                assert s.running
                hx.status()
                hx.stop()
                hx.status()
            finally:
                hx.shutdown()
    assert cap.lines[0] == "helix: running in the background at 50 Hz (hx.status(); hx.stop() stops)", cap.lines
    text = cap.text()
    assert "stopped after " in text and "hx.start() resumes ticking" in text, text


def test_firmware_error_hooks_report_each_failure_in_one_rate_limited_line():
    import helix_app
    import hx
    from helix_ipc import EventBus, Event, EventSubscription, EventTopic, Request, ModuleAddress

    clock = [0]
    s = _hand_ticked_system(clock)
    lines = []
    s.out = lines.append
    assert s.bus.error_hook is not None and s.ticks.error_hook is not None  # installed by start()

    def broken(event):
        raise ValueError("sensor %d" % event.tick_number)

    s.bus.subscribe(EventSubscription("broken", [EventTopic.TICK], broken))
    with _App(s, clock):
        _FakeMachine.fire(s.bus, 20)
        assert s.errors["bus"] == 20 and s.errors_hidden == 20 - helix_app.ERROR_LINES
        assert len(lines) == helix_app.ERROR_LINES, lines
        assert lines[0].startswith("helix: bus error in ") and "broken" in lines[0], lines  # where names the subscription
        assert lines[0].endswith(": ValueError: sensor 1"), lines
        assert "more are only counted" in lines[-1], lines
        owner, where, error = s.last_error
        assert owner == "bus" and "broken" in where and isinstance(error, ValueError) and str(error) == "sensor 20"
        # the next window: the count of what was not shown, then lines again
        clock[0] += helix_app.ERROR_WINDOW_MS
        _FakeMachine.fire(s.bus, 1)
        assert lines[helix_app.ERROR_LINES:] == [
            "helix: 15 more error(s) not shown (hx.status() counts them)", lines[0].replace("sensor 1", "sensor 21")], lines
        with _Capture() as cap:
            hx.status()
            hx.errors()
        text = cap.text()
        assert "errors reported: bus 21 router 0 ticks 0 (15 not printed)" in text, text
        assert "last: bus in " in text and ": ValueError: sensor 21 (hx.errors()" in text, text
        assert "errors reported: bus 21, router 0, ticks 0" in text, text  # hx.errors() (then the traceback)
        s.stop()

    # a router handler that raises is reported too, where this library version has router.error_hook
    from helix_ipc import MessageRouter

    if hasattr(MessageRouter(), "error_hook"):
        def bad_handler(request):
            raise OSError("bus fault")

        s.router.register(90, "bad", bad_handler)
        s.router.send("bad", Request(ModuleAddress.Name("t"), "x"))
        assert s.errors["router"] == 1 and isinstance(s.last_error[2], OSError), s.last_error

    # a hook the user installed stays: start() installs the firmware's only where there is none
    s2 = _fresh_system()
    mine = []
    s2.bus = EventBus()
    s2.host = type(s2.host)(s2.bus, s2.router)
    s2.bus.error_hook = lambda where, error: mine.append(where)
    s2.ticks = s.ticks
    s.ticks.error_hook = None
    with _App(s2, clock):
        s2.start(modules=[])
        s2.bus.subscribe(EventSubscription("broken", [EventTopic.TICK], broken))
        s2.bus.publish(Event.Tick(0, 1))
        s2.stop()
    assert len(mine) == 1 and "broken" in mine[0] and s2.errors["bus"] == 0, mine


def test_package_json_lists_every_library_file():
    if support.MICROPYTHON:
        support.skip("reads the repository with CPython's json/os; the library itself is covered elsewhere")
    import json
    import os

    pkg = json.load(open(_ROOT + "/package.json"))
    listed = sorted(dst for dst, src in pkg["urls"])
    lib = sorted("helix_ipc/" + f for f in os.listdir(_ROOT + "/lib/helix_ipc") if f.endswith(".py"))
    assert listed == lib
    for dst, src in pkg["urls"]:
        assert src == "lib/" + dst and os.path.exists(_ROOT + "/" + src)


def _button_irq_burst(button, n):
    irq = button._irq_cb
    for _ in range(n):
        irq(None)
    return n


def test_button_irq_handler_allocates_nothing_and_publishes_interrupts():
    import helix_examples
    from helix_ipc import EventBus

    bus = EventBus(isr_capacity=16)
    button = helix_examples.Button(7)
    button._post = bus.publish_from_isr  # what init() binds, without a machine.Pin
    # subscribe first: on MicroPython the posts schedule a drain that may run at once
    presses = []
    from helix_ipc import EventSubscription, EventTopic

    bus.subscribe(EventSubscription("b", [EventTopic.INTERRUPT], button.handle_event))
    bus.subscribe(EventSubscription("log", [EventTopic.INTERRUPT], lambda e: presses.append(e.vector)))
    if support.MICROPYTHON:
        support.assert_no_alloc(_button_irq_burst, button, 10)
    else:
        _button_irq_burst(button, 10)
    bus.poll()
    assert button.presses == 10 and presses == [7] * 10
    assert bus.isr_stats().posted == 10 and bus.isr_stats().dropped == 0
