# tools/bench/suite.py: every benchmark row, run under CPython or the MicroPython unix
# port by tools/bench/run.py. Prints one JSON object per row, prefixed "ROW ".
#
# Rows of a group are timed in alternation with the floor (or reference row) they are
# compared with, in the same process, with
# the same loop shape: callees hoisted into locals, `for i in range(n)`.
import gc
import json
import sys

_here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
sys.path.insert(0, _here)
sys.path.insert(0, _here + "/../../lib")

from timing import MICROPYTHON, best_ns_per_op, bytes_per_op  # noqa: E402
import floors  # noqa: E402

_results = {}


def compare(group, rows, n=None):
    """Time rows [(name, loop, ref_name_or_None, note), ...] in alternation and print
    each with its ratio to its reference (a floor or an earlier row of the group)."""
    times = best_ns_per_op([r[1] for r in rows]) if n is None else best_ns_per_op([r[1] for r in rows], n)
    for (name, loop, ref, note), ns in zip(rows, times):
        _results[name] = ns
        out = {"name": name, "group": group, "ns_per_op": ns, "bytes_per_op": bytes_per_op(loop),
               "ref": ref, "note": note}
        if ref is not None:
            out["ratio"] = ns / _results[ref]
        print("ROW " + json.dumps(out))


def skip_row(name, reason, group=""):
    print("ROW " + json.dumps({"name": name, "group": group, "skipped": reason}))


# -- channels -------------------------------------------------------------------------

def bench_channels():
    from helix_ipc import channel, oneshot

    ring = floors.RingFloor(32)

    def ring_loop(n):
        send = ring.send
        recv = ring.recv
        for i in range(n):
            send(i)
            recv()

    tx, rx = channel(32)

    def channel_loop(n):
        send = tx.send
        recv = rx.try_recv
        for i in range(n):
            send(i)
            recv()

    rows = [
        ("floor: ring send+recv", ring_loop, None, ""),
        ("channel send+try_recv", channel_loop, "floor: ring send+recv", ""),
    ]

    def oneshot_loop(n):
        for i in range(n):
            t, r = oneshot()
            t.send(i)
            r.try_recv()

    rows.append(("oneshot create+send+recv", oneshot_loop, "floor: ring send+recv", "includes creating the pair"))

    try:
        from collections import deque
    except ImportError:
        deque = None
    if deque is not None and not MICROPYTHON:
        d = deque()

        def deque_loop(n):
            append = d.append
            popleft = d.popleft
            for i in range(n):
                append(i)
                popleft()

        rows.append(("context: deque append+popleft", deque_loop, "floor: ring send+recv", "C"))
    if not MICROPYTHON:
        import queue

        q = queue.Queue(32)

        def queue_loop(n):
            put = q.put_nowait
            get = q.get_nowait
            for i in range(n):
                put(i)
                get()

        rows.append(("context: queue.Queue put_nowait+get_nowait", queue_loop, "channel send+try_recv",
                     "ratio = Queue / channel"))
    compare("channel", rows)


# -- event bus ------------------------------------------------------------------------

def _null_handler(event):
    return None


def bench_bus():
    from helix_ipc import EventBus, EventSubscription, EventTopic, Event

    event = Event.Interrupt(3, 0)

    def dispatch_floor(k):
        f = floors.DispatchFloor()
        for _ in range(k):
            f.add(EventTopic.INTERRUPT, _null_handler)

        def loop(n):
            publish = f.publish
            for i in range(n):
                publish(event)
        return loop

    def bus_with(k, others=0):
        bus = EventBus()
        for _ in range(k):
            bus.subscribe(EventSubscription("bench", [EventTopic.INTERRUPT], _null_handler))
        for i in range(others):
            topic = EventTopic.TICK if i % 2 else EventTopic.Custom("other%d" % (i % 10))
            bus.subscribe(EventSubscription("other", [topic], _null_handler))

        def loop(n):
            publish = bus.publish
            for i in range(n):
                publish(event)
        return loop

    for k in (1, 8, 64):
        floor = "floor: dispatch, %d handler%s" % (k, "" if k == 1 else "s")
        name = "publish, %d subscriber%s" % (k, "" if k == 1 else "s")
        compare("bus", [(floor, dispatch_floor(k), None, ""), (name, bus_with(k), floor, "")])
    sweep = [("publish, 1 subscriber", bus_with(1), "floor: dispatch, 1 handler", "")]
    for total in (10, 100, 1000):
        sweep.append(("publish, 1 matching among %d" % total, bus_with(1, total - 1),
                      "publish, 1 subscriber", "others on other topics"))
    compare("bus scaling", [("floor: dispatch, 1 handler", dispatch_floor(1), None, "")] + sweep)

    if not MICROPYTHON:
        peers = []
        try:
            import blinker

            signal = blinker.Signal()

            def receiver(sender, **kw):
                return None

            signal.connect(receiver)

            def blinker_loop(n):
                send = signal.send
                for i in range(n):
                    send(event)
            peers.append(("context: blinker send", blinker_loop, "publish, 1 subscriber (peers)", "ratio = blinker / helix"))
        except ImportError:
            skip_row("context: blinker send", "blinker not installed", "bus")
        try:
            import pyee

            emitter = pyee.EventEmitter()
            emitter.on("interrupt", _null_handler)

            def pyee_loop(n):
                emit = emitter.emit
                for i in range(n):
                    emit("interrupt", event)
            peers.append(("context: pyee emit", pyee_loop, "publish, 1 subscriber (peers)", "ratio = pyee / helix"))
        except ImportError:
            skip_row("context: pyee emit", "pyee not installed", "bus")
        compare("bus peers", [("publish, 1 subscriber (peers)", bus_with(1), None, "same row, timed with the peers")] + peers)


# -- message router ---------------------------------------------------------------------

def bench_router():
    from helix_ipc import MessageRouter, Request, Response, ModuleAddress

    ok = Response.ok()
    request = Request(ModuleAddress.Name("bench"), "ping")

    def handler(req):
        return ok

    floor = floors.RouteFloor()
    floor.handlers["target"] = handler

    def floor_loop(n):
        send = floor.send
        for i in range(n):
            send("target", request)

    def router_with(total):
        router = MessageRouter()
        for i in range(total - 1):
            router.register(i + 1, "m%d" % (i + 1), handler)
        router.register(0, "target", handler)
        return router

    def by_name(router):
        def loop(n):
            send = router.send
            for i in range(n):
                send("target", request)
        return loop

    def by_id(router):
        def loop(n):
            send = router.send
            for i in range(n):
                send(0, request)
        return loop

    one = router_with(1)
    compare("router", [
        ("floor: route", floor_loop, None, ""),
        ("send by name", by_name(one), "floor: route", "router.send(name, request)"),
        ("send by id", by_id(one), "floor: route", "router.send(id, request)"),
    ])
    sweep = [("send by name, 1 module", by_name(one), None, "")]
    for total in (10, 100, 1000):
        r = router_with(total)
        sweep.append(("send by name, %d modules" % total, by_name(r), "send by name, 1 module", ""))
    compare("router scaling", sweep)

    mailbox = router_with(1)

    def mailbox_loop(n):
        queue = mailbox.queue
        process = mailbox.process_mailbox
        for i in range(n):
            queue(0, request)
            process(0, 1)
    compare("router mailbox", [
        ("floor: route", floor_loop, None, ""),
        ("queue+process_mailbox", mailbox_loop, "floor: route", "one request queued, then processed"),
    ])


# -- interrupt layer --------------------------------------------------------------------

def bench_isr():
    from helix_ipc import Event, EventBus, EventSubscription, EventTopic
    from helix_ipc.isr import IsrQueue, MAX_CAPACITY

    kind = Event.Interrupt
    slot = floors.SlotFloor(MAX_CAPACITY)

    def slot_loop(n):
        post = slot.post
        for i in range(n):
            post(kind, i, 0)

    # The ring alone (no scheduler, never drained while timed): what an IRQ pays.
    ring = IsrQueue(MAX_CAPACITY, _null_handler, schedule=None)

    def post_loop(n):
        ring._r = ring._w  # start each repeat empty (O(1), once per n posts)
        post = ring.post
        for i in range(n):
            post(kind, i, 0)

    compare("isr", [
        ("floor: slot", slot_loop, None, "three ints into three lists"),
        ("publish_from_isr", post_loop, "floor: slot", "IsrQueue.post, the bound publish_from_isr"),
    ], n=MAX_CAPACITY - 96)

    bus = EventBus(isr_capacity=64)
    bus.subscribe(EventSubscription("bench", [EventTopic.INTERRUPT], _null_handler))
    if MICROPYTHON:
        bus._isr._schedule = None  # drain only through poll() below, as on CPython
        bus._isr._pending = True

    def publish_loop(n):
        publish = bus.publish
        for i in range(n):
            publish(kind(i, 0))

    def drain_loop(n):
        post = bus.publish_from_isr
        poll = bus.poll
        for i in range(n // 32):
            for j in range(32):
                post(kind, j, 0)
            poll()

    compare("isr drain", [
        ("build event + publish", publish_loop, None, "what the drain does for you"),
        ("post + drain+dispatch per event", drain_loop, "build event + publish", "batches of 32, 1 subscriber"),
    ])


SECTIONS = [bench_channels, bench_bus, bench_router, bench_isr]


def main():
    only = sys.argv[1:]  # optional section names
    for section in SECTIONS:
        if only and section.__name__ not in only:
            continue
        try:
            section()
        except ImportError as e:
            skip_row(section.__name__, "not available yet: %s" % e)
        gc.collect()


main()
