# helix_app: the firmware's system — a tick source driving Tick events, the example
# modules loaded through a ModuleHost, all on the global bus and router, so that the
# REPL (hx.py) and `mpremote exec` see the same system.
#
# Task context only. `start()` returns at once: ticks and deliveries then run in the
# background (timer IRQ -> IRQ ring -> micropython.schedule drain), so the REPL stays
# usable. `run()` is what main.py calls. Where the firmware has asyncio (every rp2 and
# esp32 build, the unix port) it runs the system as an asyncio application, `main()`:
# ticks into the bus (the tick source started inside the loop also runs bus.pump()),
# each module's `run` task and a serve task answering its mailbox (ModuleHost tasks),
# a status line every few seconds, the services in `system.services` (each a function
# taking the System and returning a coroutine: the serial link adds itself there), and
# micropython-lib's `aiorepl` when it is installed (`mip install aiorepl`): then the REPL
# is usable while the system runs (hx works there; Ctrl-D in aiorepl ends the run).
# Without aiorepl it behaves as before: the console shows the status lines and Ctrl-C
# stops the system cleanly (timers released, module tasks cancelled) and returns to
# the REPL with the modules still loaded (hx.status(), hx.ask() work; hx.start()
# resumes ticking in the background). A build without asyncio runs the polled loop:
# service the mailboxes every 10 ms.
#
# Failures that cannot be raised to a caller (a handler or a callback that raised, an
# IRQ post or a tick that could not be delivered) are counted by their owner (bus,
# router, tick source) and passed to its error_hook. start() installs `report` as that
# hook on each of them that has none yet (your own hook is kept): it counts per owner,
# keeps the last one (hx.errors() prints its traceback) and prints one line per failure
# on stderr, at most ERROR_LINES lines per ERROR_WINDOW_MS; beyond that a failure is only
# counted, and the next line printed says how many were not shown. report() runs where
# the owner calls its hook (the bus's drain, a publish, a send, process_mailbox, a module
# task), never in a hard IRQ.
import sys
import time

from helix_ipc import Event, ModuleHost, TickSource, global_event_bus, global_router
from helix_ipc import board
from helix_ipc._compat import ticks_ms, ticks_diff

import helix_examples

ERROR_LINES = 5  # error lines printed per window; a module failing on every tick would flood the console
ERROR_WINDOW_MS = 10000

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
        self.started_ms = None  # start of the current (or last) run; None: never started
        self.stopped_ms = None
        self.running = False
        self.runs = 0  # start()s since this System was made (since the reset, on a board)
        # Ticks fired before the current run started: a TickSource counts `fired` over
        # its whole life, the run's uptime only since start(), so drift compares the
        # run's own ticks with the run's own time.
        self.fired_at_start = 0
        self.errors = {"bus": 0, "router": 0, "ticks": 0}  # failures report() was given
        self.last_error = None  # (owner, where, error) of the last one
        self.errors_hidden = 0  # of those, not printed (rate limit)
        self._shown = 0  # lines printed and failures not printed in the current window
        self._hidden = 0
        self._window_ms = None  # when the current window began (its first failure)
        self.out = _stderr_line  # where report() prints (tests capture it)
        self.on_asyncio = False  # True while main() runs the system
        self.services = []  # functions system -> coroutine, run as tasks by main()
        self.service_errors = 0  # services that ended with an exception
        self._hooks = {}
        for owner in self.errors:
            self._hooks[owner] = self._hook_for(owner)

    def _hook_for(self, owner):
        return lambda where, error: self.report(owner, where, error)

    def report(self, owner, where, error):
        """The firmware's error hook: count, remember, print one rate-limited line."""
        self.errors[owner] = self.errors.get(owner, 0) + 1
        self.last_error = (owner, where, error)
        now = ticks_ms()
        if self._window_ms is None or ticks_diff(now, self._window_ms) >= ERROR_WINDOW_MS:
            if self._hidden:
                self.out("helix: %d more error(s) not shown (hx.status() counts them)" % self._hidden)
            self._window_ms = now
            self._shown = 0
            self._hidden = 0
        if self._shown < ERROR_LINES:
            self._shown += 1
            self.out("helix: %s error in %s: %s%s" % (
                owner, where, describe(error),
                " (more are only counted for %d s)" % (ERROR_WINDOW_MS // 1000) if self._shown == ERROR_LINES else ""))
        else:
            self._hidden += 1
            self.errors_hidden += 1

    def _install_hooks(self):
        # The firmware's hooks where nobody installed one (a user's own hook stays).
        for owner, obj in (("bus", self.bus), ("router", self.router), ("ticks", self.ticks)):
            if getattr(obj, "error_hook", None) is None:
                obj.error_hook = self._hooks[owner]

    def start(self, modules=None, hz=None):
        """Load the modules (the profile's examples by default; once: a restart after
        stop() keeps them), install the error hooks and start ticking at `hz`
        (default: the profile's). Returns the System."""
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
        self._install_hooks()
        self.ticks.start()
        self.started_ms = ticks_ms()
        self.fired_at_start = self.ticks.stats().fired  # read after start(): whether or not start() resets `fired`
        self.stopped_ms = None
        self.running = True
        self.runs += 1
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
        """One line of counters: uptime, ticks, the IRQ ring, requests routed, errors."""
        isr = self.bus.isr_stats()
        t = self.ticks.stats() if self.ticks is not None else None
        return ("helix: up %d ms | ticks fired=%s delivered=%s lost=%s drift=%s | isr posted=%d delivered=%d"
                " dropped=%d | routed=%d | errors=%d" % (
                    self.uptime_ms(), t.fired if t else "-", t.delivered if t else "-", t.lost if t else "-",
                    self.drift(), isr.posted, isr.delivered, isr.dropped, self.router.messages_routed,
                    sum(self.errors.values())))

    def run_ticks(self):
        """Ticks fired in the current (or last) run."""
        if self.ticks is None or self.started_ms is None:
            return 0
        return self.ticks.stats().fired - self.fired_at_start

    def drift(self):
        """Ticks fired in this run minus what its uptime predicts (negative: late or
        missing timer ticks); None before the first start()."""
        if self.ticks is None or self.started_ms is None:
            return None
        return self.run_ticks() - self.uptime_ms() * self.ticks.hz // 1000

    def uptime_ms(self):
        """How long the current run has lasted (the last one's length, when stopped)."""
        if self.started_ms is None:
            return 0
        end = ticks_ms() if self.stopped_ms is None else self.stopped_ms
        return ticks_diff(end, self.started_ms)


def _stderr_line(text):
    sys.stderr.write(text + "\n")


def describe(error):
    """One line for what an error hook was given: an exception, or the invalid value a
    handler returned."""
    if isinstance(error, BaseException):
        return "%s: %s" % (type(error).__name__, error)
    return "returned %r" % (error,)


system = System()


def start(modules=None, hz=None):
    """Start the system in the background and return it."""
    return system.start(modules, hz)


def stop():
    system.stop()


def shutdown():
    system.shutdown()


def _optional(name):
    # the module when this firmware has it (asyncio; aiorepl: micropython-lib's asyncio
    # REPL, when installed on the board), else None
    try:
        return __import__(name)
    except ImportError:
        return None


def _banner(how):
    print("helix: running on %s: modules %s, ticks at %d Hz (%s)" % (
        board.profile()["name"], ", ".join(system.host.loaded()), system.ticks.hz, how))


async def _service(asyncio, svc):
    # one entry of system.services; an exception is reported, never kills main()
    try:
        await svc(system)
    except asyncio.CancelledError:
        raise
    except Exception as e:
        system.service_errors += 1
        system.report("router", "service %r" % (getattr(svc, "__name__", svc),), e)


async def main(seconds=None, report_every_s=None, modules=None, hz=None, repl=True):
    """The firmware as an asyncio application: start the system inside the loop, run the
    module tasks, the services and (when installed and `repl`) aiorepl, print a status
    line every `report_every_s` seconds; returns after `seconds` (None: until the aiorepl
    task ends, or forever), having stopped the system and cancelled every task."""
    import asyncio

    s = system
    s.start(modules, hz)  # in a task: the tick source's pump runs here too
    s.host.start_tasks()
    s.on_asyncio = True
    tasks = [asyncio.create_task(_service(asyncio, svc)) for svc in s.services]
    aiorepl = _optional("aiorepl") if repl else None
    repl_task = None
    if aiorepl is not None:
        import __main__

        repl_task = asyncio.create_task(aiorepl.task(__main__.__dict__))
        tasks.append(repl_task)
    _banner("on asyncio; " + ("aiorepl: the REPL stays usable, Ctrl-D ends the run" if repl_task is not None
                              else "Ctrl-C stops"))
    t0 = ticks_ms()
    last = t0
    step_ms = 100
    try:
        while seconds is None or ticks_diff(ticks_ms(), t0) < seconds * 1000:
            if repl_task is not None and repl_task.done():
                break
            await asyncio.sleep(step_ms / 1000)
            if report_every_s and ticks_diff(ticks_ms(), last) >= report_every_s * 1000:
                last = ticks_ms()
                print(s.status_line())
    finally:
        for t in tasks:
            t.cancel()
        s.host.stop_tasks()
        s.on_asyncio = False
        s.stop()


def run(seconds=None, report_every_s=None, modules=None, hz=None, use_asyncio=None):
    """Start, then run the system until Ctrl-C (or for `seconds`), printing a status
    line every `report_every_s` seconds when given. On asyncio (main()) when this build
    has it and `use_asyncio` is not False; else the polled loop. Always stops cleanly."""
    asyncio = _optional("asyncio") if use_asyncio is not False else None
    if use_asyncio and asyncio is None:
        raise NotImplementedError("helix_app.run(use_asyncio=True): this firmware has no asyncio")
    try:
        if asyncio is not None:
            asyncio.run(main(seconds, report_every_s, modules, hz))
        else:
            _run_polled(seconds, report_every_s, modules, hz)
    except KeyboardInterrupt:
        print("helix: Ctrl-C, stopping")
    finally:
        system.stop()
        if asyncio is not None:
            system.host.stop_tasks()
            system.on_asyncio = False
            if sys.implementation.name == "micropython":
                # a Ctrl-C leaves main()'s tasks queued in MicroPython's asyncio: a fresh
                # loop drops them, so a later asyncio.run() starts clean
                asyncio.new_event_loop()
        sys.stdout.write("helix: stopped (timers released)\n")


def _run_polled(seconds, report_every_s, modules, hz):
    # Without asyncio: service the mailboxes (and IRQ posts nothing schedules) every 10 ms.
    system.start(modules, hz)
    _banner("Ctrl-C stops")
    t0 = ticks_ms()
    last = t0
    while seconds is None or ticks_diff(ticks_ms(), t0) < seconds * 1000:
        system.service()
        if report_every_s and ticks_diff(ticks_ms(), last) >= report_every_s * 1000:
            last = ticks_ms()
            print(system.status_line())
        _sleep_ms(10)
