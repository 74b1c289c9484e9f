# tools/bench/footprint_device.py: heap cost of importing helix_ipc parts, and of a
# channel slot, a subscription and a registered module. Runs under the MicroPython
# unix port (gc.mem_alloc), one part per process:
#   footprint_device.py <what> <libdir> [--board]
# (--board: sys.exc_info hidden first, as on a board). Prints "FOOT <what> <bytes>",
# "QSTR before|after" each followed by micropython.qstr_info()'s line (the last pair is
# the measured one's: interned names, pools included, are part of the heap figure),
# "LOADED <module,...>" (the helix_ipc modules in memory afterwards: footprint.py adds
# their native code, which the unix port keeps outside the GC heap) and, for import:all,
# "MISSING <name,...>" for names of the public API the package does not have.
import gc
import sys

what = sys.argv[1]
_here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
sys.path.insert(0, sys.argv[2])
sys.path.insert(0, _here + "/../../host_tests")
import boardmode  # noqa: E402 - host_tests/boardmode.py, in both modes: both start with the same names

if "--board" in sys.argv[3:]:
    boardmode.enter()

_PARTS = {
    "import:helix_ipc": "helix_ipc",
    "import:channel": "helix_ipc.channels",
    "import:bus": "helix_ipc.bus",
    "import:router": "helix_ipc.router",
    "import:module": "helix_ipc.module",
    "import:tick": "helix_ipc.tick",
}
# Everything shared/API.md lists outside "asyncio": the whole core.
_ALL = (
    "IpcError", "ModuleNotFound", "ChannelFull", "ChannelClosed", "ChannelEmpty", "Timeout",
    "Rejected", "AlreadyRegistered", "InternalError",
    "channel", "default_channel", "oneshot",
    "EventTopic", "Event", "MemoryPressureLevel", "EventResponse", "SubscriptionPriority",
    "EventSubscription", "EventBus", "global_event_bus", "subscribe", "unsubscribe", "publish_event",
    "MessagePriority", "ModuleAddress", "Request", "Response", "MessageRouter",
    "global_router", "send_request", "send_to",
    "Module", "ModuleHost", "TickSource",
)
missing = []


def _qstr_info(tag):
    # micropython.qstr_info() prints "qstr pool: ... n_total_bytes=N": the interned names
    # (pools + string data). footprint.py reads the line after "QSTR <tag>".
    try:
        import micropython
    except ImportError:
        return
    print("QSTR", tag)
    micropython.qstr_info()


def measure(fn):
    _qstr_info("before")
    gc.collect()
    before = gc.mem_alloc()
    keep = fn()
    gc.collect()
    used = gc.mem_alloc() - before
    _qstr_info("after")
    return used, keep


def per_item(build, n):
    # Heap per item: difference between n items and 1, divided by n - 1.
    one, k1 = measure(lambda: build(1))
    many, k2 = measure(lambda: build(n))
    return (many - one) / (n - 1)


_ORDER = ("helix_ipc", "helix_ipc._compat", "helix_ipc.errors", "helix_ipc._record", "helix_ipc.events",
          "helix_ipc.board", "helix_ipc.isr", "helix_ipc.channels", "helix_ipc.messages", "helix_ipc.bus",
          "helix_ipc.router", "helix_ipc.module", "helix_ipc.tick")


def _loaded():
    return set(m for m in sys.modules if m == "helix_ipc" or m.startswith("helix_ipc."))


if what == "breakdown":
    # Each module's own import heap: imported one after another (what it imports and is
    # not loaded yet is charged to it and listed). "STEP <module> <bytes> <also,...>".
    import os

    names = list(_ORDER)
    for f in sorted(os.listdir(sys.argv[2] + "/helix_ipc")):
        m = "helix_ipc." + f.rsplit(".", 1)[0]
        if f.endswith(".mpy") and m not in names and f != "__init__.mpy":
            names.append(m)
    total = 0
    for m in names:
        if m in sys.modules:
            continue
        before = _loaded()
        try:
            used, _ = measure(lambda m=m: __import__(m))
        except ImportError as e:
            print("STEP", m, "0", "import failed: %s" % e)
            continue
        total += used
        print("STEP", m, used, ",".join(sorted(_loaded() - before - {m})))
    used = total
elif what == "use:all":
    # import:all plus what first use loads: one of each object (the bus pulls its
    # interrupt layer and the board profile, TickSource the profile).
    def load():
        import helix_ipc
        bus = helix_ipc.EventBus()
        router = helix_ipc.MessageRouter()
        return (helix_ipc, bus, router, helix_ipc.channel(1), helix_ipc.oneshot(),
                helix_ipc.ModuleHost(bus, router), helix_ipc.TickSource(bus=bus))
    used, _ = measure(load)
elif what == "import:all":
    def load():
        import helix_ipc
        for name in _ALL:
            try:
                getattr(helix_ipc, name)
            except AttributeError:
                missing.append(name)
        return helix_ipc
    used, _ = measure(load)
elif what in _PARTS:
    used, _ = measure(lambda: __import__(_PARTS[what]))
elif what == "per:channel slot":
    from helix_ipc import channel
    used = per_item(lambda n: channel(n), 1024)
elif what == "per:subscription":
    from helix_ipc import EventBus, EventSubscription, EventTopic

    def handler(event):
        return None

    def build(n):
        bus = EventBus()
        for i in range(n):
            bus.subscribe(EventSubscription("s", [EventTopic.Custom("t%d" % (i % 50))], handler))
        return bus
    used = per_item(build, 200)
elif what == "per:module":
    from helix_ipc import MessageRouter

    def handler(request):
        return None

    def build(n):
        router = MessageRouter()
        for i in range(n):
            router.register(i, "m%d" % i, handler)
        return router
    used = per_item(build, 200)
else:
    raise SystemExit("unknown measurement " + what)
print("FOOT", what, int(used))
print("LOADED", ",".join(sorted(m for m in sys.modules if m == "helix_ipc" or m.startswith("helix_ipc."))))
if missing:
    print("MISSING", ",".join(missing))
