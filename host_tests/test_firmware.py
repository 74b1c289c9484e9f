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
    assert stats.ticks >= 10 and len(errors) >= 10 and set(errors) == {"crashy"}


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
        helix_app.run(hz=100)  # returns after the Ctrl-C, having stopped the system
    finally:
        helix_app.system = saved
    assert calls[0] == 5 and not s.running and not s.ticks.stats().running
    assert sorted(s.host.loaded()) == ["heartbeat", "stats"]  # still there to ask
    s.shutdown()


def test_status_prints_the_system():
    support.need_threads()
    import helix_app
    import hx

    s = _fresh_system()
    saved = helix_app.system
    helix_app.system = s
    lines = []
    import builtins

    real_print = builtins.print
    builtins.print = lambda *a, **k: lines.append(" ".join(str(x) for x in a))
    try:
        s.start(hz=100)
        _wait_ticks(s, 3)
        hx.status()
        r = hx.ask("stats", "get_stats")
    finally:
        builtins.print = real_print
        s.shutdown()
        helix_app.system = saved
    text = "\n".join(lines)
    for needle in ("modules (2)", "heartbeat", "subscriptions (2)", "TICK", "irq ring", "ticks: 100 Hz", "drift"):
        assert needle in text, (needle, text)
    assert r.is_success and lines[-1].startswith("stats get_stats -> ticks=")


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
