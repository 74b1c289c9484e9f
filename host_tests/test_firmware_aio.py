# The firmware on asyncio (helix_app.main / run): ticks into the bus with nobody polling,
# modules answer requests through their serve tasks, services run as tasks, aiorepl is
# started when installed (a stand-in here: micropython-lib's aiorepl is not installable
# on this machine), Ctrl-C stops cleanly and leaves the modules loaded, hx.status() says
# "on asyncio", and without asyncio (or use_asyncio=False) the polled loop runs.
import sys

import support
from test_firmware import _App, _Capture, _fresh_system

from helix_ipc import ModuleAddress, Request, Response


def _asyncio():
    import asyncio

    return asyncio


def test_run_on_asyncio_ticks_and_serves_requests_with_nobody_polling():
    support.need_threads()
    import helix_app
    import hx

    s = _fresh_system()
    seen = {}

    async def asker(system):
        asyncio = _asyncio()
        await asyncio.sleep(0.3)
        seen["on_asyncio"] = system.on_asyncio
        # answered by the stats module's serve task: nobody calls process_mailbox
        seen["response"] = await system.router.request("stats", Request(ModuleAddress.Name("t"), "get_stats"), 2000)
        hx.status()

    s.services.append(asker)
    with _App(s):
        with _Capture(s) as cap:
            helix_app.run(seconds=0.8, report_every_s=0.25, hz=200)
    text = cap.text()
    assert "(on asyncio; Ctrl-C stops)" in text, text
    assert "running on asyncio, up " in text, text  # hx.status() from the service
    assert text.count("helix: up ") >= 1, text  # status lines
    r = seen["response"]
    assert seen["on_asyncio"] is True and isinstance(r, Response.Success), seen
    fields = dict(kv.split("=") for kv in r.data.decode().split(","))
    assert int(fields["ticks"]) >= 10, fields
    t = s.ticks.stats()
    assert not s.running and not t.running and not s.on_asyncio
    assert t.lost == 0 and t.delivered == t.fired >= 40, t  # no tick lost, none left queued
    assert all(e[3] is None for e in s.host._loaded.values())  # module tasks cancelled
    assert sorted(s.host.loaded()) == ["heartbeat", "stats"]  # still loaded, to ask
    assert s.router.send("stats", Request(ModuleAddress.Name("t"), "get_stats")).is_success
    s.shutdown()


def test_ctrl_c_on_asyncio_stops_cleanly_and_a_later_run_starts_clean():
    support.need_threads()
    import helix_app

    s = _fresh_system()
    calls = [0]

    async def interrupt(system):
        calls[0] += 1
        await _asyncio().sleep(0.2)
        raise KeyboardInterrupt  # what Ctrl-C raises in the running code

    s.services.append(interrupt)
    with _App(s):
        with _Capture(s) as cap:
            helix_app.run(hz=100)  # no `seconds`: only the Ctrl-C ends it
            s.services.remove(interrupt)
            helix_app.run(seconds=0.3, hz=100)  # again: a clean loop, no task of the first run
    text = cap.text()
    assert text.count("helix: Ctrl-C, stopping") == 1 and text.count("(on asyncio; Ctrl-C stops)") == 2, text
    assert calls[0] == 1  # the first run's service did not come back in the second
    assert not s.running and not s.ticks.stats().running and s.runs == 2
    assert all(e[3] is None for e in s.host._loaded.values())
    s.shutdown()


def test_a_failing_service_is_reported_and_the_system_runs_on():
    support.need_threads()
    import helix_app

    s = _fresh_system()

    async def broken(system):
        raise OSError("no uart")

    s.services.append(broken)
    with _App(s):
        with _Capture(s) as cap:
            helix_app.run(seconds=0.4, hz=100)
    assert s.service_errors == 1 and s.errors["router"] == 1, s.errors
    assert any("service" in line and "no uart" in line for line in cap.errors), cap.errors
    assert s.ticks.stats().delivered > 10
    s.shutdown()


class _FakeAiorepl:
    """Stands in for micropython-lib's aiorepl: task(g) is a coroutine that runs until
    the user ends it (here: after a few turns) and sees the REPL globals."""

    def __init__(self):
        self.started = 0
        self.globals = None

    async def _task(self, g):
        self.started += 1
        self.globals = g
        await _asyncio().sleep(0.3)  # the user types for a while, then Ctrl-D

    def task(self, g=None, prompt="--> "):
        return self._task(g)


def test_aiorepl_runs_beside_the_system_when_installed_and_ending_it_ends_the_run():
    support.need_threads()
    import helix_app

    fake = _FakeAiorepl()
    saved = sys.modules.get("aiorepl")
    sys.modules["aiorepl"] = fake
    s = _fresh_system()
    try:
        with _App(s):
            with _Capture(s) as cap:
                helix_app.run(hz=100)  # no `seconds`: ends when the REPL task does
    finally:
        if saved is None:
            del sys.modules["aiorepl"]
        else:
            sys.modules["aiorepl"] = saved
    text = cap.text()
    assert fake.started == 1 and isinstance(fake.globals, dict), text
    assert "aiorepl: the REPL stays usable" in text, text
    assert s.ticks.stats().delivered > 10 and not s.running
    s.shutdown()


def test_polled_loop_when_asked_or_without_asyncio():
    support.need_threads()
    import helix_app

    s = _fresh_system()
    with _App(s):
        with _Capture(s) as cap:
            helix_app.run(seconds=0.3, hz=100, use_asyncio=False)
    text = cap.text()
    assert "(Ctrl-C stops)" in text and "on asyncio" not in text, text
    assert s.ticks.stats().delivered > 10 and not s.running
    s.shutdown()
