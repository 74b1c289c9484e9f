# hx: REPL helpers for a board running helix_ipc (task context, at the REPL).
#
#   import hx
#   hx.status()                      the whole system at a glance
#   hx.ask("stats", "get_stats")     send a request to a module, print and return the Response
#   hx.start() / hx.stop()           run the system in the background / stop its ticks
#   hx.shutdown()                    publish Shutdown and unload every module
import helix_app
from helix_ipc import ModuleAddress, Request, Response
from helix_ipc import board

_REPL = ModuleAddress.Name("repl")


def ask(module, request_type, payload=b""):
    """Send `request_type` to `module` (a name or an id) now; returns the Response."""
    response = helix_app.system.router.send(module, Request(_REPL, request_type, payload))
    if isinstance(response, Response.Success) and isinstance(response.data, bytes):
        print("%s %s -> %s" % (module, request_type, response.data.decode()))
    else:
        print("%s %s -> %r" % (module, request_type, response))
    return response


def start(hz=None):
    return helix_app.start(hz=hz)


def stop():
    helix_app.stop()


def shutdown():
    helix_app.shutdown()


def _drift(system):
    # Ticks fired vs what the elapsed time predicts: negative means late ticks.
    t = system.ticks
    if t is None or system.started_ms is None:
        return None
    expected = system.uptime_ms() * t.hz // 1000
    return t.stats().fired - expected


def line():
    """One status line (what run() prints every few seconds)."""
    print(helix_app.system.status_line())


def status():
    """Print modules, subscriptions per topic, IRQ ring and tick counters, tick drift."""
    s = helix_app.system
    p = board.profile()
    print("helix_ipc on %s (%s), %s, up %d ms" % (
        p["name"], p.get("description", ""), "running" if s.running else "stopped", s.uptime_ms()))
    router = s.router
    print("modules (%d):" % router.module_count())
    for name in s.host.loaded():
        mid = router.get_module_id(name)
        print("  %3s %-10s mailbox %d/%d" % (mid, name, router.mailbox_size(mid), router.mailbox_capacity(mid)))
    for name, why in s.failed.items():
        print("  --- %-10s NOT LOADED: %s" % (name, why))
    print("subscriptions (%d):" % s.bus.subscription_count())
    for topic, names in sorted(s.bus.subscriptions_by_topic().items()):
        print("  %-16s %s" % (topic, ", ".join(names)))
    isr = s.bus.isr_stats()
    print("irq ring: posted %d delivered %d dropped %d schedule_failures %d high_water %d/%d" % (
        isr.posted, isr.delivered, isr.dropped, isr.schedule_failures, isr.high_water, isr.capacity))
    print("bus: dispatched %d dropped %d | router: routed %d errors %d refused %d" % (
        s.bus.events_dispatched, s.bus.events_dropped, router.messages_routed,
        router.handler_errors, router.messages_refused))
    if s.ticks is not None:
        t = s.ticks.stats()
        print("ticks: %d Hz (%s) fired %d delivered %d lost %d gaps %d drift %s ticks" % (
            t.hz, t.backend, t.fired, t.delivered, t.lost, t.gaps, _drift(s)))
