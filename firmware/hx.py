# hx: REPL helpers for a board running helix_ipc (task context, at the REPL).
#
#   import hx
#   hx.status()                      the whole system at a glance: state, modules,
#                                    subscriptions, every counter, tick drift, errors
#   hx.ask("stats", "get_stats")     send a request to a module, print and return the Response
#   hx.start() / hx.stop()           run the system in the background / stop its ticks
#   hx.shutdown()                    publish Shutdown and unload every module
#   hx.errors()                      failures reported to the error hooks, with the
#                                    traceback of the last one
#   hx.line()                        the one-line status main.py prints every few seconds
import sys

import helix_app
from helix_ipc import ModuleAddress, ModuleNotFound, Request, Response
from helix_ipc import board

_REPL = ModuleAddress.Name("repl")


def ask(module, request_type, payload=b""):
    """Send `request_type` to `module` (a name or an id) now; returns the Response."""
    s = helix_app.system
    try:
        response = s.router.send(module, Request(_REPL, request_type, payload))
    except ModuleNotFound:
        if s.started_ms is None:
            print("hx: no module %r: the system was not started since the last reset (hx.status() says more)"
                  % (module,))
        raise
    if isinstance(response, Response.Success) and isinstance(response.data, bytes):
        print("%s %s -> %s" % (module, request_type, response.data.decode()))
    else:
        print("%s %s -> %r" % (module, request_type, response))
    return response


def start(hz=None):
    """Start (or resume) the system in the background; the REPL stays usable."""
    s = helix_app.start(hz=hz)
    print("helix: running in the background at %d Hz (hx.status(); hx.stop() stops)" % s.ticks.hz)


def stop():
    helix_app.stop()


def shutdown():
    helix_app.shutdown()


def line():
    """One status line (what run() prints every few seconds)."""
    print(helix_app.system.status_line())


def _counters(obj, names, get=getattr):
    # "name value" for each name; "-" where this library version lacks the counter.
    return " ".join("%s %s" % (n, get(obj, n, "-")) for n in names)


def _record(rec, names, skip=()):
    # A stats record's fields: `names` first, then any other field it has.
    out = _counters(rec, names)
    for n in getattr(rec, "_fields", ()):
        if n not in names and n not in skip:
            out += " %s %s" % (n, getattr(rec, n))
    return out


_NOT_STARTED = """\
  Nothing was started since the last reset. `mpremote exec`, `run` and `eval` soft-reset
  the board first, and main.py does not run after a soft reset, so they see this fresh,
  empty system. To reach the system main.py started, keep its state:
    mpremote resume exec "import hx; hx.status()"
  To start it here: hx.start() (background) or helix_app.run() (foreground, Ctrl-C stops)."""


def status():
    """Print the system's state, modules, subscriptions per topic, and every counter:
    bus, router, IRQ ring, ticks (with this run's drift) and reported errors."""
    s = helix_app.system
    p = board.profile()
    if s.running:
        state = "running%s, up %d ms (run %d)" % (" on asyncio" if s.on_asyncio else "", s.uptime_ms(), s.runs)
    elif s.started_ms is not None:
        state = "stopped after %d ms (Ctrl-C or hx.stop(); hx.start() resumes ticking)" % s.uptime_ms()
    else:
        state = "NOT RUNNING"
    print("helix_ipc on %s (%s): %s" % (p["name"], p.get("description", ""), state))
    if s.started_ms is None:
        print(_NOT_STARTED)
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
    bus = s.bus
    print("bus: " + _counters(bus, ("events_dispatched", "events_dropped", "handler_errors")))
    isr = bus.isr_stats()
    print("irq ring: %s high_water %d/%d" % (
        _record(isr, ("posted", "delivered", "dropped", "schedule_failures", "errors"), ("high_water", "capacity")),
        isr.high_water, isr.capacity))
    print("module tasks: " + _counters(s.host, ("task_errors",)) + " services %d errors %d" % (
        len(s.services), s.service_errors))
    print("router: " + _counters(router, ("messages_routed", "handler_errors", "messages_refused", "callback_errors",
                                          "messages_discarded", "late_responses")))
    if s.ticks is None:
        print("ticks: no tick source yet")
    else:
        t = s.ticks.stats()
        print("ticks: %d Hz (%s) %s" % (t.hz, t.backend, _record(
            t, ("fired", "delivered", "lost", "gaps"), ("hz", "running", "backend"))))
        if s.started_ms is not None:
            print("  this run: fired %d in %d ms, drift %+d ticks" % (s.run_ticks(), s.uptime_ms(), s.drift()))
    e = s.errors
    print("errors reported: bus %d router %d ticks %d%s" % (
        e.get("bus", 0), e.get("router", 0), e.get("ticks", 0),
        " (%d not printed)" % s.errors_hidden if s.errors_hidden else ""))
    if s.last_error is not None:
        owner, where, error = s.last_error
        print("  last: %s in %s: %s (hx.errors() shows its traceback)" % (owner, where, helix_app.describe(error)))
    if "helix_link" in sys.modules:  # the serial link's lines, when the firmware serves it
        for line in sys.modules["helix_link"].status_lines():
            print(line)


def errors():
    """Print the failure counts and the traceback of the last failure the error hooks
    reported (deploy with DEBUG=1 for line numbers in library frames)."""
    s = helix_app.system
    print("errors reported: %s" % ", ".join("%s %d" % kv for kv in sorted(s.errors.items())))
    if s.last_error is None:
        print("no failure reported since the last reset")
        return
    owner, where, error = s.last_error
    print("last: %s in %s: %s" % (owner, where, helix_app.describe(error)))
    if isinstance(error, BaseException):
        if hasattr(sys, "print_exception"):
            sys.print_exception(error)
        else:  # CPython
            import traceback

            traceback.print_exception(type(error), error, error.__traceback__)
