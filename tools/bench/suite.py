# tools/bench/suite.py: every timed benchmark row, run under CPython or the MicroPython
# unix port by tools/bench/run.py:  suite.py [--board] [--lib DIR] [section ...]
# Prints one JSON object per row, prefixed "ROW ", and one "MODE " line at the end.
#
# --board: board mode, as rp2/esp32 see the library: sys.exc_info hidden (the sys
# stand-in of host_tests/support.py, installed before helix_ipc is imported); the MODE
# line then says whether every loaded library module really saw no exc_info.
# --lib DIR: where helix_ipc is (default lib/ of this repository).
# --repeats N: best of N repeats per row (at least 7; default timing.REPEATS, 15).
#
# Rows of a group are timed in alternation with the floor (or reference row) they are
# compared with, in the same process, with the same loop shape: callees hoisted into
# locals, `for i in range(n)`. Only the public API is used, except where a row says so.
import gc
import json
import sys

_here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
_args = sys.argv[1:]
BOARD = "--board" in _args
LIB = _here + "/../../lib"
if "--lib" in _args:
    LIB = _args[_args.index("--lib") + 1]
sys.path.insert(0, _here)
sys.path.insert(0, _here + "/../../host_tests")
sys.path.insert(0, LIB)

import support  # noqa: E402 - host_tests/support.py: the one board-mode implementation

if BOARD:
    support.enter_board_mode()

import timing  # noqa: E402
from timing import ALLOC_COUNTER, MICROPYTHON, best_ns_per_op, bytes_per_op, in_scheduler  # noqa: E402

if "--repeats" in _args:
    timing.REPEATS = max(7, int(_args[_args.index("--repeats") + 1]))
import floors  # noqa: E402

_results = {}


def compare(group, rows, n=None, chunk=None, scheduler_locked=False):
    """Time rows [(name, loop, ref_or_None, note[, reset]), ...] in alternation and print
    each with its ratio to its reference (a floor or an earlier row of the group).
    chunk: loops run `chunk` ops at a time, each chunk after the row's untimed reset().
    scheduler_locked: time (and count bytes) inside a scheduled callback, so that a
    drain the library schedules waits until the loop is done (see timing.in_scheduler)."""
    loops = [r[1] for r in rows]
    resets = [r[4] if len(r) > 4 else (lambda: None) for r in rows]

    every = []

    def measure():
        kw = {"resets": resets, "chunk": chunk, "every": every}
        if n is not None:
            kw["n"] = n
        times = best_ns_per_op(loops, **kw)
        allocs = [bytes_per_op(loop, chunk or 2000, reset) for loop, reset in zip(loops, resets)]
        return times, allocs

    times, allocs = in_scheduler(measure) if scheduler_locked else measure()
    index = {r[0]: k for k, r in enumerate(rows)}
    for k, (r, ns, b) in enumerate(zip(rows, times, allocs)):
        name, loop, ref, note = r[:4]
        _results[name] = ns
        out = {"name": name, "group": group, "ns_per_op": ns, "bytes_per_op": b,
               "ref": ref, "note": note}
        if ref is not None:
            out["ratio"] = ns / _results[ref]
            if ref in index:
                # Noise check: the ratio within each repeat (row and reference timed
                # back to back), median over the repeats. Far from the best/best ratio
                # means the machine's load changed under the measurement.
                paired = sorted(rep[k] / rep[index[ref]] for rep in every)
                out["ratio_paired_median"] = paired[len(paired) // 2]
        print("ROW " + json.dumps(out))


def skip_row(name, reason, group=""):
    print("ROW " + json.dumps({"name": name, "group": group, "skipped": reason}))


def _null_handler(event):
    return None


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

    def oneshot_loop(n):
        for i in range(n):
            t, r = oneshot()
            t.send(i)
            r.try_recv()

    rows = [
        ("floor: ring send+recv", ring_loop, None, ""),
        ("channel send+try_recv", channel_loop, "floor: ring send+recv", ""),
        ("oneshot create+send+recv", oneshot_loop, "floor: ring send+recv", "includes creating the pair"),
    ]
    if not MICROPYTHON:
        from collections import deque
        import queue

        d = deque()
        q = queue.Queue(32)

        def deque_loop(n):
            append = d.append
            popleft = d.popleft
            for i in range(n):
                append(i)
                popleft()

        def queue_loop(n):
            put = q.put_nowait
            get = q.get_nowait
            for i in range(n):
                put(i)
                get()

        rows.append(("context: deque append+popleft", deque_loop, "floor: ring send+recv", "C"))
        rows.append(("context: queue.Queue put_nowait+get_nowait", queue_loop, "channel send+try_recv",
                     "ratio = Queue / channel"))
    compare("channel", rows)


# -- event bus ------------------------------------------------------------------------

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
    base = "publish, 1 subscriber (scaling base)"
    sweep = [("floor: dispatch, 1 handler", dispatch_floor(1), None, ""),
             (base, bus_with(1), "floor: dispatch, 1 handler", "")]
    for total in (200, 1000):
        sweep.append(("publish, 1 matching among %d" % total, bus_with(1, total - 1), base,
                      "the others on TICK and 10 custom topics"))
    compare("bus scaling", sweep)

    if not MICROPYTHON:
        base = "publish, 1 subscriber (peers)"
        peers = [(base, bus_with(1), None, "same row, timed with the peers")]
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
            peers.append(("context: blinker send", blinker_loop, base, "ratio = blinker / helix"))
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
            peers.append(("context: pyee emit", pyee_loop, base, "ratio = pyee / helix"))
        except ImportError:
            skip_row("context: pyee emit", "pyee not installed", "bus")
        compare("bus peers", peers)


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

    def sender(router, to):
        def loop(n):
            send = router.send
            for i in range(n):
                send(to, request)
        return loop

    forms = (("int id", 0), ("str name", "target"),
             ("ModuleAddress.Id", ModuleAddress.Id(0)), ("ModuleAddress.Name", ModuleAddress.Name("target")))
    one = router_with(1)
    rows = [("floor: route", floor_loop, None, "")]
    for label, to in forms:
        rows.append(("send by " + label, sender(one, to), "floor: route", "router.send(%s, request)" % label))
    compare("router", rows)

    big = {total: router_with(total) for total in (100, 1000)}
    for label, to in forms[:2]:
        base = "send by %s, 1 module (scaling base)" % label
        sweep = [(base, sender(one, to), None, "")]
        for total in (100, 1000):
            sweep.append(("send by %s, %d modules" % (label, total), sender(big[total], to), base, ""))
        if label == "str name":
            # Context: the route floor's own dict holding the same 1000 names ("m1".."m999"
            # and "target"): what a plain dict lookup costs with these keys on this port.
            floor_big = floors.RouteFloor()
            for i in range(999):
                floor_big.handlers["m%d" % (i + 1)] = handler
            floor_big.handlers["target"] = handler

            def floor_big_loop(n, floor_big=floor_big):
                send = floor_big.send
                for i in range(n):
                    send("target", request)
            sweep.append(("floor: route (scaling base)", floor_loop, None, ""))
            sweep.append(("context: route floor, same 1000 names", floor_big_loop, "floor: route (scaling base)",
                          "a plain dict with the router's 1000 names"))
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

    kind = Event.Interrupt
    hits = [0]

    def counting_handler(event):
        hits[0] += 1

    def new_bus(capacity):
        try:
            bus = EventBus(isr_capacity=capacity)
        except ValueError:
            bus = EventBus()  # the library's maximum is lower: use its default
        bus.subscribe(EventSubscription("bench", [EventTopic.INTERRUPT], counting_handler))
        return bus

    def capacity_of(bus):
        stats = bus.isr_stats()
        cap = stats.get("capacity") if hasattr(stats, "get") else getattr(stats, "capacity", None)
        return cap or 64

    # 1. The post alone. The ring holds `chunk` posts: each chunk of posts is timed,
    # then drained untimed (poll()). On MicroPython all of it runs inside a scheduled
    # callback, so the drain the first post schedules waits, as during a hard IRQ.
    post_bus = new_bus(1024)
    chunk = min(1000, capacity_of(post_bus) - 1)
    slot = floors.SlotFloor(chunk + 1)

    def slot_loop(n):
        post = slot.post
        for i in range(n):
            post(kind, i, 0)

    def post_loop(n):
        post = post_bus.publish_from_isr
        for i in range(n):
            post(kind, i, 0)

    # The timed chunks must never drop (a dropped post is another, cheaper path).
    post_bus.poll()
    dropped = _stat(post_bus.isr_stats(), "dropped")
    post_loop(chunk)
    post_bus.poll()
    if _stat(post_bus.isr_stats(), "dropped") != dropped:
        skip_row("publish_from_isr", "a chunk of %d posts overflowed the ring: not timed" % chunk, "isr")
        return

    compare("isr", [
        ("floor: slot", slot_loop, None, "three ints into three lists", lambda: None),
        ("publish_from_isr", post_loop, "floor: slot",
         "chunks of %d posts, each drained untimed by poll(); scheduler held off" % chunk, post_bus.poll),
    ], chunk=chunk, scheduler_locked=True)

    # 2. Post + delivery, poll() after each post (the scheduler held off on MicroPython,
    # so poll() is the only drain, as on CPython), against building and publishing.
    bus = new_bus(64)

    def publish_loop(n):
        publish = bus.publish
        for i in range(n):
            publish(kind(i, 0))

    def poll_loop(n):
        post = bus.publish_from_isr
        poll = bus.poll
        for i in range(n):
            post(kind, i, 0)
            poll()

    def batch_loop(n):
        post = bus.publish_from_isr
        poll = bus.poll
        for i in range(n // 32):
            for j in range(32):
                post(kind, j, 0)
            poll()

    hits[0] = 0
    compare("isr delivery", [
        ("build event + publish", publish_loop, None, "what the drain does for you"),
        ("IRQ post + poll() after each post", poll_loop, "build event + publish", "1 subscriber"),
        ("context: 32 posts + one poll()", batch_loop, "build event + publish", "per event"),
    ], scheduler_locked=True)

    # 3. Post + the scheduled drain: the loop only posts; micropython.schedule runs the
    # bus's drain at the loop's next bytecode back-edge (the unix port runs scheduled
    # callbacks there, as a board's VM does). One poll() at the end delivers any left;
    # the note says how many events the scheduler delivered and that none was dropped.
    floor_row = ("build event + publish (main loop)", publish_loop, None, "")
    if not MICROPYTHON or not hasattr(__import__("micropython"), "schedule"):
        compare("isr scheduled", [floor_row])
        skip_row("IRQ post + scheduled drain", "no micropython.schedule here: poll() is the only drain",
                 "isr scheduled")
        return
    sbus = new_bus(64)
    left = [0]

    def sched_loop(n):
        post = sbus.publish_from_isr
        for i in range(n):
            post(kind, i, 0)
        left[0] += sbus.poll()

    # (isr_stats() may be a record the bus reuses: read each field at once.)
    dropped0 = _stat(sbus.isr_stats(), "dropped")
    hits[0] = 0
    left[0] = 0
    rows = [floor_row,
            ("IRQ post + scheduled drain", sched_loop, "build event + publish (main loop)", "")]
    # Count deliveries over one plain run first.
    sched_loop(5000)
    posted = 5000
    delivered_by_scheduler = hits[0] - left[0]
    dropped = _stat(sbus.isr_stats(), "dropped") - dropped0
    note = "%d of %d posts delivered by the scheduled drain, %d by the final poll(), %d dropped" % (
        delivered_by_scheduler, posted, left[0], dropped)
    rows[1] = rows[1][:3] + (note,)
    dropped0 = _stat(sbus.isr_stats(), "dropped")
    compare("isr scheduled", rows)
    dropped = _stat(sbus.isr_stats(), "dropped") - dropped0
    if dropped:  # replaces the row above in run.py's table: a timing with drops is not one
        skip_row("IRQ post + scheduled drain", "%d posts dropped while timed: not a delivery time" % dropped,
                 "isr scheduled")


def _stat(stats, field):
    if hasattr(stats, "get"):
        return stats.get(field, 0)
    return getattr(stats, field, 0)


# -- object sizes (MicroPython heap) ---------------------------------------------------

def bench_objects():
    if not MICROPYTHON:
        skip_row("object sizes", "gc.mem_alloc heap sizes are a MicroPython measure", "objects")
        return
    from helix_ipc import EventBus, MessageRouter, ModuleHost

    def size(make):
        make()  # once first: lazily imported parts are import cost, not object cost
        gc.collect()
        before = gc.mem_alloc()
        keep = make()
        gc.collect()
        used = gc.mem_alloc() - before
        return used, keep

    bus_b, bus = size(EventBus)
    router_b, router = size(MessageRouter)
    host_b, _ = size(lambda: ModuleHost(bus, router))
    for name, b in (("EventBus()", bus_b), ("MessageRouter()", router_b), ("ModuleHost(bus, router)", host_b)):
        print("ROW " + json.dumps({"name": name, "group": "objects", "size_bytes": b,
                                   "note": "gc.mem_alloc delta of a second instance, 64-bit"}))


# -- asyncio: IRQ post -> an awaiting task resumes ----------------------------------------

_ASYNC_ROW = "IRQ post -> awaiting task resumes (median)"


def _now_us():
    import time

    if hasattr(time, "ticks_us"):
        return time.ticks_us()
    return time.perf_counter_ns() // 1000


def stream_latencies(bus, stream, kind, count, poll):
    """Latency in us from publish_from_isr to the resumption of a task awaiting
    stream.next(), `count` times. A producer task lets the consumer block in next() first
    (sleep(0)), stamps the time, posts, and (where there is no scheduler: poll) drains."""
    import asyncio

    lat = []
    stamp = [0]
    got = asyncio.Event()

    async def consumer():
        for _ in range(count):
            await stream.next()
            lat.append(_now_us() - stamp[0])
            got.set()

    async def producer():
        post = bus.publish_from_isr
        for i in range(count):
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            stamp[0] = _now_us()
            post(kind, i, 0)
            if poll:
                bus.poll()
            await got.wait()
            got.clear()

    async def main():
        task = asyncio.create_task(consumer())
        await producer()
        await task

    asyncio.run(main())
    return lat


def bench_asyncio():
    try:
        import asyncio  # noqa: F401
    except ImportError:
        skip_row(_ASYNC_ROW, "no asyncio in this interpreter", "asyncio")
        return
    from helix_ipc import Event, EventBus, EventSubscription, EventTopic

    bus = EventBus()
    if not hasattr(bus, "stream"):
        skip_row(_ASYNC_ROW, "bus.stream() is not in the library yet (the asyncio layer)", "asyncio")
        return
    kind = Event.Interrupt
    base_bus = EventBus()  # the base: build and publish to one plain subscriber, as in bench_isr
    base_bus.subscribe(EventSubscription("bench", [EventTopic.INTERRUPT], _null_handler))

    def publish_loop(n):
        publish = base_bus.publish
        for i in range(n):
            publish(kind(i, 0))

    base_ns = best_ns_per_op([publish_loop])[0]
    stream = bus.stream([EventTopic.INTERRUPT], capacity=16)
    lat = sorted(stream_latencies(bus, stream, kind, 2000, poll=not MICROPYTHON))
    median_ns = lat[len(lat) // 2] * 1000
    p99_ns = lat[len(lat) * 99 // 100] * 1000
    print("ROW " + json.dumps({"name": "build event + publish (asyncio base)", "group": "asyncio",
                               "ns_per_op": base_ns, "ref": None, "note": ""}))
    print("ROW " + json.dumps({
        "name": _ASYNC_ROW, "group": "asyncio", "ns_per_op": median_ns, "ref": "build event + publish (asyncio base)",
        "ratio": median_ns / base_ns, "p99_ns": p99_ns,
        "note": "2000 posts; median %.0f us, p99 %.0f us%s" % (
            median_ns / 1000, p99_ns / 1000, "" if MICROPYTHON else "; poll() after each post (no scheduler)")}))
    stream.close()


SECTIONS = [bench_channels, bench_bus, bench_router, bench_isr, bench_objects, bench_asyncio]


def main():
    only = [a for a in _args if a.startswith("bench_")]
    for section in SECTIONS:
        if only and section.__name__ not in only:
            continue
        try:
            section()
        except ImportError as e:
            skip_row(section.__name__, "not available yet: %s" % e)
        gc.collect()
    mode = {"board": BOARD, "alloc_counter": ALLOC_COUNTER, "repeats": timing.REPEATS, "n": timing.N}
    if BOARD:
        mode["problems"] = support.board_mode_problems()
    mode["library_modules"] = sorted(m for m in sys.modules if m.startswith("helix_ipc"))
    print("MODE " + json.dumps(mode))


main()
