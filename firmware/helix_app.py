# helix_app: the firmware's system — a tick source driving Tick events, the example
# modules loaded through a ModuleHost, all on the global bus and router, so that the
# REPL (hx.py) and `mpremote exec` see the same system.
#
# Task context only. `start()` returns at once: ticks and deliveries then run in the
# background (timer IRQ -> IRQ ring -> micropython.schedule drain), so the REPL stays
# usable. `run()` is what main.py calls: start, then service mailboxes in a loop until
# Ctrl-C, which stops the system cleanly (timers released) and returns to the REPL with
# the modules still loaded (hx.status(), hx.ask() work; hx.start() resumes ticking).
import sys
import time

from helix_ipc import Event, ModuleHost, TickSource, global_event_bus, global_router
from helix_ipc import board
from helix_ipc._compat import ticks_ms, ticks_diff

import helix_examples

if hasattr(time, "sleep_ms"):
    _sleep_ms = time.sleep_ms
else:  # CPython

    def _sleep_ms(ms):
        time.sleep(ms / 1000)


def default_modules(profile):
    mods = [
        helix_examples.Stats(),
        helix_examples.Heartbeat(profile.get("led_pin"), profile["tick_hz"]),
    ]
    if profile.get("button_pin") is not None:
        mods.append(helix_examples.Button(profile["button_pin"]))
    return mods


class System:
    """The running system: `start(modules=None, hz=None)`, `stop()`, `service()`."""

    def __init__(self):
        self.bus = global_event_bus()
        self.router = global_router()
        self.host = ModuleHost(self.bus, self.router)
        self.ticks = None
        self.failed = {}  # module name -> why it did not load
        self.modules_loaded = False
        self.started_ms = None
        self.stopped_ms = None
        self.running = False

    def start(self, modules=None, hz=None):
        """Load the modules (the profile's examples by default; once: a restart after
        stop() keeps them) and start ticking at `hz` (default: the profile's)."""
        if self.running:
            return self
        if not self.modules_loaded:
            self.modules_loaded = True
            self.failed = {}
            profile = board.profile()
            for module in default_modules(profile) if modules is None else modules:
                try:
                    self.host.load(module)
                except Exception as e:  # one module failing to load does not stop the rest
                    self.failed[module.name] = "%s: %s" % (type(e).__name__, e)
                    print("helix: module %r not loaded: %s" % (module.name, self.failed[module.name]))
        if self.ticks is None or (hz is not None and hz != self.ticks.hz):
            self.ticks = TickSource(hz=hz, bus=self.bus)
        self.ticks.start()
        self.started_ms = ticks_ms()
        self.stopped_ms = None
        self.running = True
        return self

    def stop(self):
        """Release the timer and deliver what is queued. Modules stay loaded, so they
        can still be asked (hx.ask) and start() resumes ticking."""
        if not self.running:
            return
        self.running = False
        self.stopped_ms = ticks_ms()
        self.ticks.stop()
        self.bus.poll()

    def shutdown(self):
        """stop(), publish Event.Shutdown to whoever listens, then unload every module."""
        self.stop()
        self.bus.publish(Event.Shutdown())
        for name in list(self.host.loaded()):
            self.host.unload(name)
        self.modules_loaded = False

    def service(self, max_per_module=8):
        """Deliver queued IRQ posts (where nothing schedules the drain) and process
        each module's mailbox. Returns how many items were handled."""
        n = self.bus.poll()
        router = self.router
        for name in self.host.loaded():
            module_id = router.get_module_id(name)
            if module_id is not None and router.mailbox_size(module_id):
                n += router.process_mailbox(module_id, max_per_module)
        return n

    def status_line(self):
        """One line of counters: uptime, ticks, the IRQ ring, requests routed."""
        isr = self.bus.isr_stats()
        t = self.ticks.stats() if self.ticks is not None else None
        return ("helix: up %d ms | ticks fired=%s delivered=%s lost=%s | isr posted=%d delivered=%d dropped=%d"
                " | routed=%d" % (self.uptime_ms(), t.fired if t else "-", t.delivered if t else "-",
                                  t.lost if t else "-", isr.posted, isr.delivered, isr.dropped,
                                  self.router.messages_routed))

    def uptime_ms(self):
        """How long the system has run (until stop(), when stopped)."""
        if self.started_ms is None:
            return 0
        end = ticks_ms() if self.stopped_ms is None else self.stopped_ms
        return ticks_diff(end, self.started_ms)


system = System()


def start(modules=None, hz=None):
    """Start the system in the background and return it."""
    return system.start(modules, hz)


def stop():
    system.stop()


def shutdown():
    system.shutdown()


def run(seconds=None, report_every_s=None, modules=None, hz=None):
    """Start, then service the system until Ctrl-C (or for `seconds`), printing a status
    line every `report_every_s` seconds when given. Always stops cleanly."""
    system.start(modules, hz)
    print("helix: running on %s: modules %s, ticks at %d Hz (Ctrl-C stops)" % (
        board.profile()["name"], ", ".join(system.host.loaded()), system.ticks.hz))
    t0 = ticks_ms()
    last = t0
    try:
        while seconds is None or ticks_diff(ticks_ms(), t0) < seconds * 1000:
            system.service()
            if report_every_s and ticks_diff(ticks_ms(), last) >= report_every_s * 1000:
                last = ticks_ms()
                print(system.status_line())
            _sleep_ms(10)
    except KeyboardInterrupt:
        print("helix: Ctrl-C, stopping")
    finally:
        system.stop()
        sys.stdout.write("helix: stopped (timers released)\n")
