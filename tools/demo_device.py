# demo_device.py: the device half of `make demo`, run on the (virtual) board with
# `mpremote run` after main.py was interrupted. Uses the deployed firmware (helix_app,
# hx) and library; prints what happens: ticks, requests and responses, counters.
import time

import helix_app
import hx
from helix_ipc import EventTopic, Module, ModuleAddress, MessagePriority, Request


def pause(ms, system):
    # Let ticks arrive (timer IRQ -> ring -> scheduled drain) while servicing mailboxes.
    t0 = time.ticks_ms()
    while time.ticks_diff(time.ticks_ms(), t0) < ms:
        system.service()
        time.sleep_ms(10)


class Crashy(Module):
    """Raises on every tick: the bus counts the errors and the others carry on."""

    name = "crashy"
    topics = [EventTopic.TICK]

    def handle_event(self, event):
        raise ValueError("sensor %d not answering" % event.tick_number)


print("== start the system from the board profile")
system = helix_app.start()
print("== run it for 1.5 s")
pause(1500, system)
t = system.ticks.stats()
print("ticks: fired %d, delivered %d, lost %d" % (t.fired, t.delivered, t.lost))
print("== request/response: hx.ask('stats', 'get_stats')")
hx.ask("stats", "get_stats")
hx.ask("heartbeat", "get_blinks")

print("== queue four requests at mixed priorities; the mailbox serves the highest first")
me = ModuleAddress.Name("demo")
for prio, kind in ((MessagePriority.LOW, "get_stats"), (MessagePriority.CRITICAL, "reset"),
                   (MessagePriority.NORMAL, "get_stats"), (MessagePriority.HIGH, "get_stats")):
    req = Request(me, kind).with_priority(prio)
    system.router.queue("stats", req, callback=lambda r, k=kind, p=prio: print("  answered %s (priority %d): %r" % (k, p, r)))
system.service()

print("== a module that raises on every tick does not stop the others; the firmware's")
print("   error hook prints one line per failure (at most 5 per 10 s) and counts the rest")
system.host.load(Crashy())
before = system.ticks.stats().delivered
errors_before = system.errors["bus"]
pause(500, system)
print("crashy raised %d times; ticks delivered meanwhile: %d" % (
    system.errors["bus"] - errors_before, system.ticks.stats().delivered - before))
system.host.unload("crashy")
print("== hx.errors(): the last failure with its traceback")
hx.errors()

print("== the firmware on asyncio: helix_app.run(seconds=1.5) with a task of ours as a service:")
print("   it awaits a tick stream and a request (served by the stats module's serve task)")


async def watcher(system):
    with system.bus.stream([EventTopic.TICK], 8) as ticks:
        for _ in range(3):
            event = await ticks.next(1000)
            print("  task: tick %d at %d ms" % (event.tick_number, event.timestamp_ns // 1000000))
    r = await system.router.request("stats", Request(me, "get_stats"), 500)
    print("  task: await router.request('stats', get_stats, 500 ms) -> %s" % r.data.decode())


system.services.append(watcher)
helix_app.run(seconds=1.5)
system.services.remove(watcher)

print("== the system at a glance: hx.status()")
hx.status()
helix_app.shutdown()
print("== shut down: timer running = %s, modules loaded = %d" % (
    system.ticks.stats().running, len(system.host.loaded())))
