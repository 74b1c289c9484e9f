# tools/stress/scenarios.py: the stress and fault scenarios of helix_ipc (issue 11).
#
# One implementation of each scenario, scaled by `scale`: `make stress` runs them at
# scale 1 (minutes, tools/stress/run.py), `make test` at a small scale
# (host_tests/test_stress.py, seconds). Each scenario is a function `name(scale)` that
# uses only the public API of helix_ipc, raises AssertionError naming what differed,
# raises Skip(reason) when this interpreter lacks what it needs (threads,
# micropython.schedule, heap_lock), and returns its figures as a list of
# (name, value) pairs. Events per second are context only: every assertion is on
# counts, identities, order and memory, never on wall-clock time.
#
# Runs unchanged on CPython 3.11 and the MicroPython unix port (also in "board mode",
# sys.exc_info hidden). Threads stand in for the other contexts: a thread that calls
# send_from_isr/publish_from_isr plays the IRQ (one such producer per ring, as
# documented), the main thread plays the scheduler/main loop.

import gc
import sys
import time

MICROPYTHON = sys.implementation.name == "micropython"


class Skip(Exception):
    """This interpreter lacks what the scenario needs; args[0] says what."""


def _n(base, scale, least):
    # the size of one dimension at this scale, never below `least`
    n = int(base * scale)
    return n if n > least else least


def _eq(got, want, what):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, got, want))


def _true(cond, what):
    if not cond:
        raise AssertionError(what)


def _ms():
    # for the events/s figures only (context, never asserted)
    if MICROPYTHON:
        return time.ticks_ms()
    return int(time.monotonic() * 1000)


def _elapsed(t0):
    if MICROPYTHON:
        return time.ticks_diff(time.ticks_ms(), t0)
    return _ms() - t0


def _need_threads():
    try:
        import _thread
    except ImportError:
        raise Skip("needs _thread (this interpreter has no threads)")
    return _thread


def _need_micropython(what):
    try:
        import micropython
    except ImportError:
        raise Skip("needs %s: CPython has no MicroPython runtime" % what)
    return micropython


def _stat(rec, field):
    # a stats() record field, by attribute (the public form)
    return getattr(rec, field)


def _start(_thread, fn, errors, done, slot):
    # run fn() in a thread; its exception lands in errors[slot], done[slot] = 1 at the end
    def body():
        try:
            fn()
        except BaseException as e:  # noqa: B036 - handed to the main thread
            errors[slot] = e
        done[slot] = 1

    _thread.start_new_thread(body, ())


def _fast_switching():
    # CPython: switch threads often (more interleavings, and a producer spinning on a
    # full channel does not hold the GIL for 5 ms). Returns the old interval.
    if MICROPYTHON:
        return None
    old = sys.getswitchinterval()
    sys.setswitchinterval(0.00005)
    return old


def _pause():
    # inside a spin-wait: CPython hands the GIL over (spinning there only delays the
    # thread waited for); MicroPython threads run truly in parallel and keep spinning
    if not MICROPYTHON:
        time.sleep(0)


def _restore_switching(old):
    if old is not None:
        sys.setswitchinterval(old)


def _wait_threads(done, errors, spin):
    # wait for every thread, calling spin() meanwhile (the consumer's work)
    while 0 in done:
        spin()
        for e in errors:
            if e is not None:
                raise e
    for e in errors:
        if e is not None:
            raise e


# -- 1. channels: threads x clone/close churn x send_from_isr flood -----------------

_SHIFT = 22  # item = context << _SHIFT | sequence number
_SEQ = (1 << _SHIFT) - 1


def channel_churn(scale):
    """Rounds of _churn_round on fresh channels; figures summed (items/s: the mean)."""
    rounds = _n(3, scale, 1)
    total = None
    for _ in range(rounds):
        figures = _churn_round(_n(300000, scale, 2000))
        if total is None:
            total = figures
        else:
            total = [(k, v + w) for (k, v), (_, w) in zip(total, figures)]
    return [("rounds", rounds)] + [(k, v // rounds if k == "items/s" else v) for k, v in total]


def _churn_round(n):
    """Two threads send 0..n-1 with send() (retrying on ChannelFull) on channel A while
    each swaps its Sender for a clone every few items; the main thread clones, sends
    one marker and closes a Sender per turn and receives both channels; a third thread
    floods channel B with send_from_isr (its only producer), without retrying, while
    the main thread clones and closes B's Senders. Every item arrives exactly once, in
    each producer's order; stats() equal the counts kept by the producers."""
    # n: items per producer thread
    _thread = _need_threads()
    from helix_ipc import ChannelClosed, ChannelEmpty, ChannelFull, channel

    swap = 97  # a producer swaps its Sender for a clone every `swap` items
    producers = 2
    main_ctx = producers  # the main thread's markers on A
    cap = 16
    tx_a, rx_a = channel(cap)
    tx_b, rx_b = channel(cap)
    refused = [0] * (producers + 1)  # ChannelFull per context on A (main thread last)
    isr_acc = bytearray(n)  # seq accepted by send_from_isr on B
    isr_refused = [0]
    errors = [None] * (producers + 1)
    done = [0] * (producers + 1)
    stop = [0]  # set when the main thread gives up: spinning threads end

    def producer(ctx):
        def run():
            me = tx_a.clone()
            base = ctx << _SHIFT
            full = 0
            i = 0
            while i < n:
                if i % swap == 0:
                    c = me.clone()
                    me.close()
                    me = c
                try:
                    me.send(base | i)
                    i += 1
                except ChannelFull:
                    full += 1
                    _pause()
                    if stop[0]:
                        return
            me.close()
            refused[ctx] = full

        return run

    def isr_flood():
        me = tx_b.clone()
        send_from_isr = me.send_from_isr
        dropped = 0
        for i in range(n):
            if send_from_isr(i):
                isr_acc[i] = 1
            else:
                dropped += 1
                # an IRQ source is on average slower than its consumer: after a drop,
                # let the receiver catch up half way (so that both drops and deliveries
                # keep happening while the main thread churns)
                while len(me) > cap // 2 and not stop[0]:
                    _pause()
        isr_refused[0] = dropped
        me.close()

    nxt = [0] * (producers + 1)  # next sequence number expected per context on A
    got_b = bytearray(n)
    last_b = [-1]
    marks = [0, 0]  # markers sent by the main thread, refused markers

    def take_a():
        item = rx_a.try_recv()
        ctx = item >> _SHIFT
        seq = item & _SEQ
        if seq != nxt[ctx]:
            raise AssertionError("channel A, context %d: got item %d, want %d (lost or duplicated)" % (ctx, seq, nxt[ctx]))
        nxt[ctx] = seq + 1

    def take_b():
        seq = rx_b.try_recv()
        if seq <= last_b[0] or got_b[seq]:
            raise AssertionError("channel B: item %d after %d (reordered or duplicated)" % (seq, last_b[0]))
        got_b[seq] = 1
        last_b[0] = seq

    def spin():
        c = tx_a.clone()
        try:
            c.send(main_ctx << _SHIFT | marks[0])
            marks[0] += 1
        except ChannelFull:
            marks[1] += 1
        c.close()
        c = tx_b.clone()
        c.close()
        for _ in range(cap):
            try:
                take_a()
            except ChannelEmpty:
                break
        for _ in range(cap):
            try:
                take_b()
            except ChannelEmpty:
                break

    old = _fast_switching()
    t0 = _ms()
    try:
        for ctx in range(producers):
            _start(_thread, producer(ctx), errors, done, ctx)
        _start(_thread, isr_flood, errors, done, producers)
        _wait_threads(done, errors, spin)
    finally:
        stop[0] = 1
        _restore_switching(old)
    ms = _elapsed(t0)
    # everything sent is queued now: drain, then close the originals
    while len(rx_a):
        take_a()
    while len(rx_b):
        take_b()
    refused[main_ctx] = marks[1]
    sent_a = producers * n + marks[0]
    full_a = sum(refused)
    sent_b = sum(isr_acc)
    for ctx in range(producers):
        _eq(nxt[ctx], n, "channel A: items received from producer %d" % ctx)
    _eq(nxt[main_ctx], marks[0], "channel A: markers received from the main thread")
    _eq(got_b == isr_acc, True, "channel B: the items received are exactly those send_from_isr accepted")
    _eq(sent_b + isr_refused[0], n, "channel B: accepted + refused send_from_isr")
    st = rx_a.stats()
    _eq(_stat(st, "sent"), sent_a, "channel A stats().sent")
    _eq(_stat(st, "received"), sent_a, "channel A stats().received")
    _eq(_stat(st, "queue_length"), 0, "channel A stats().queue_length")
    _eq(_stat(st, "capacity"), cap, "channel A stats().capacity")
    _eq(_stat(st, "dropped"), full_a, "channel A stats().dropped (= ChannelFull raised)")
    st = rx_b.stats()
    _eq(_stat(st, "sent"), sent_b, "channel B stats().sent")
    _eq(_stat(st, "received"), sent_b, "channel B stats().received")
    _eq(_stat(st, "queue_length"), 0, "channel B stats().queue_length")
    _eq(_stat(st, "dropped"), isr_refused[0], "channel B stats().dropped (= send_from_isr False)")
    # the originals are the last open Senders: closing them closes the channels
    _eq(rx_a.is_closed(), False, "channel A closed while its first Sender is open")
    tx_a.close()
    tx_b.close()
    for rx, what in ((rx_a, "A"), (rx_b, "B")):
        e = None
        try:
            rx.try_recv()
        except ChannelClosed as x:
            e = x
        except ChannelEmpty as x:
            e = x
        _true(isinstance(e, ChannelClosed), "channel %s: try_recv after the last Sender closed: %r" % (what, e))
    total = sent_a + sent_b
    return [
        ("items", total),
        ("A sent", sent_a),
        ("A full", full_a),
        ("B sent", sent_b),
        ("B dropped", isr_refused[0]),
        ("clones", marks[0] + marks[1] + producers * (n // swap + 1)),
        ("items/s", int(total * 1000 / ms) if ms > 0 else 0),
    ]


# -- 2. the bus IRQ path under flood ------------------------------------------------


def _interrupt_recorder(n):
    # a handler checking posting order; got[seq] = 1 for each delivered seq
    got = bytearray(n)
    state = [-1, 0]  # last seq, deliveries

    def handler(event):
        seq = event.vector
        if seq <= state[0] or got[seq]:
            raise AssertionError("IRQ post %d delivered after %d (reordered or duplicated)" % (seq, state[0]))
        got[seq] = 1
        state[0] = seq
        state[1] += 1

    return got, state, handler


def isr_flood(scale):
    """One thread (the IRQ) posts n events with publish_from_isr as fast as it can,
    never retrying; the main thread drains with poll() (and, on MicroPython, the drain
    that publish_from_isr schedules runs there too). posted == delivered + dropped,
    the delivered events are exactly the accepted posts in posting order, dropped
    equals the False returns, 1 <= high_water <= capacity (= capacity once one was
    dropped), nothing failed to schedule."""
    _thread = _need_threads()
    from helix_ipc import Event, EventBus, EventSubscription, EventTopic

    n = _n(600000, scale, 5000)  # two bytearrays of n: 1.2 MB of the unix port's 2 MB heap
    cap = 64
    bus = EventBus(isr_capacity=cap)
    got, state, handler = _interrupt_recorder(n)
    bus.subscribe(EventSubscription("irq", [EventTopic.INTERRUPT], handler))
    hooked = []
    bus.error_hook = lambda where, error: hooked.append((where, error))
    acc = bytearray(n)
    refused = [0]
    errors = [None]
    done = [0]

    stop = [0]

    def flood():
        post = bus.publish_from_isr
        kind = Event.Interrupt
        dropped = 0
        accepted = 0
        for i in range(n):
            if post(kind, i, 0):
                acc[i] = 1
                accepted += 1
            else:
                dropped += 1
                # on average an IRQ source is slower than its drain: after a drop let
                # the drain catch up half way, so drops and deliveries interleave
                while accepted - state[1] > cap // 2 and not stop[0]:
                    _pause()
        refused[0] = dropped

    poll = bus.poll
    old = _fast_switching()
    t0 = _ms()
    try:
        _start(_thread, flood, errors, done, 0)
        _wait_threads(done, errors, poll)
    finally:
        stop[0] = 1
        _restore_switching(old)
    while poll():
        pass
    ms = _elapsed(t0)
    _eq(hooked, [], "error hook calls")
    accepted = sum(acc)
    st = bus.isr_stats()
    _eq(accepted + refused[0], n, "accepted + refused posts")
    _eq(got == acc, True, "the delivered posts are exactly the accepted ones")
    _eq(state[1], accepted, "handler calls")
    _eq(_stat(st, "posted"), n, "isr_stats().posted")
    _eq(_stat(st, "dropped"), refused[0], "isr_stats().dropped (= publish_from_isr False)")
    _eq(_stat(st, "delivered"), accepted, "isr_stats().delivered")
    _eq(_stat(st, "posted"), _stat(st, "delivered") + _stat(st, "dropped"), "posted == delivered + dropped")
    _eq(_stat(st, "schedule_failures"), 0, "isr_stats().schedule_failures (one drain pending at a time)")
    _eq(_stat(st, "errors"), 0, "isr_stats().errors")
    hw = _stat(st, "high_water")
    _true(1 <= hw <= cap, "isr_stats().high_water %d outside 1..%d" % (hw, cap))
    if refused[0]:
        _eq(hw, cap, "isr_stats().high_water once a post was dropped")
    return [
        ("posts", n),
        ("delivered", accepted),
        ("dropped", refused[0]),
        ("high water", hw),
        ("posts/s", int(n * 1000 / ms) if ms > 0 else 0),
    ]


def _schedule_round(micropython, rnd, cap, extra, dummy, dummies):
    # one round of schedule_full: returns (schedule_failures, dummies the queue took)
    from helix_ipc import Event, EventBus, EventSubscription, EventTopic

    bus = EventBus(isr_capacity=cap)
    got, state, handler = _interrupt_recorder(cap + extra + 1)
    bus.subscribe(EventSubscription("irq", [EventTopic.INTERRUPT], handler))
    seen = []  # inside the callback: filled, post results, stats, deliveries

    def inside(_):
        filled = 0
        while True:
            try:
                micropython.schedule(dummy, 0)
            except RuntimeError:
                break
            filled += 1
        res = [bus.publish_from_isr(Event.Interrupt, i, 0) for i in range(cap + extra)]
        seen.append(filled)
        seen.append(res)
        seen.append(bus.isr_stats())
        seen.append(state[1])

    before = dummies[0]
    micropython.schedule(inside, 0)
    for _ in range(1000):  # the scheduler runs `inside`, then the dummies
        if len(seen) == 4 and dummies[0] - before == seen[0]:
            break
    _eq(len(seen), 4, "round %d: the scheduled callback ran" % rnd)
    filled, res, st, delivered_inside = seen
    _true(filled >= 1, "round %d: the schedule queue took no dummy" % rnd)
    _eq(dummies[0] - before, filled, "round %d: dummies run after the callback" % rnd)
    _eq(res, [True] * cap + [False] * extra, "round %d: publish_from_isr results with the schedule queue full" % rnd)
    _eq(delivered_inside, 0, "round %d: deliveries while the schedule queue was full" % rnd)
    f = _stat(st, "schedule_failures")
    _true(1 <= f <= cap + extra, "round %d: schedule_failures %d outside 1..%d" % (rnd, f, cap + extra))
    _eq(_stat(st, "dropped"), extra, "round %d: isr_stats().dropped" % rnd)
    _eq(state[1], 0, "round %d: deliveries before poll()" % rnd)
    _eq(bus.poll(), cap, "round %d: poll() after the schedule queue emptied" % rnd)
    _eq(state[1], cap, "round %d: handler calls after poll()" % rnd)
    _eq(bytes(got[:cap]), b"\x01" * cap, "round %d: posts delivered by poll()" % rnd)
    st = bus.isr_stats()
    _eq(_stat(st, "posted"), cap + extra, "round %d: isr_stats().posted" % rnd)
    _eq(_stat(st, "delivered"), cap, "round %d: isr_stats().delivered" % rnd)
    _eq(_stat(st, "errors"), 0, "round %d: isr_stats().errors" % rnd)
    _eq(_stat(st, "high_water"), cap, "round %d: isr_stats().high_water" % rnd)
    # the queue is free again: this post is delivered by the scheduled drain alone
    _eq(bus.publish_from_isr(Event.Interrupt, cap + extra, 0), True, "round %d: post after recovery" % rnd)
    for _ in range(1000):
        if state[1] == cap + 1:
            break
    _eq(state[1], cap + 1, "round %d: the scheduled drain delivered the post without poll()" % rnd)
    _eq(_stat(bus.isr_stats(), "schedule_failures"), f, "round %d: schedule_failures after recovery" % rnd)
    return f, filled


def schedule_full(scale):
    """MicroPython: from inside a scheduled callback (the scheduler is locked there, as
    in an IRQ) fill micropython.schedule's queue with dummies, then post capacity +
    extra events. The first `capacity` posts succeed although no drain can be
    scheduled, the rest are dropped; schedule_failures counts the failed attempts;
    nothing is delivered until poll() (or the next successful schedule), which then
    delivers every accepted post in order. Then the queue is free again and a post is
    delivered by the scheduled drain alone, without poll()."""
    micropython = _need_micropython("micropython.schedule")
    if not hasattr(micropython, "schedule"):
        raise Skip("this MicroPython build has no micropython.schedule")

    rounds = _n(2000, scale, 20)
    caps = (1, 2, 3, 8, 16)
    total = 0
    depth = 0
    fails = 0
    dummies = [0]

    def dummy(_):
        dummies[0] += 1

    for rnd in range(rounds):
        cap = caps[rnd % len(caps)]
        f, depth = _schedule_round(micropython, rnd, cap, rnd % 4, dummy, dummies)
        total += cap + 1
        fails += f
    return [("rounds", rounds), ("delivered", total), ("schedule failures", fails), ("schedule depth", depth)]


# -- 3. MemoryError at each allocation of register, subscribe and queue ------------

_HOLD = []  # the heap filler of _squeeze (made once, before any heap is filled)


def _heap_tools():
    micropython = _need_micropython("a MicroPython heap to exhaust")
    if not hasattr(gc, "mem_free"):
        raise Skip("this MicroPython build has no gc.mem_free")
    if not _HOLD:
        _HOLD.extend([None] * 2048)
    return micropython


def _fill(j, top):
    # fill the heap from _HOLD[j]: halving bytearrays, then one-block objects (floats)
    hold = _HOLD
    end = len(hold)
    size = top
    while size >= 32 and j < end:
        try:
            hold[j] = bytearray(size - 32)
            j += 1
        except MemoryError:
            size >>= 1
    f = 0.5
    while j < end:
        try:
            hold[j] = f + j
            j += 1
        except MemoryError:
            return j
    raise AssertionError("the heap filler needs more than %d slots" % end)


def _squeeze(hole):
    # Exhaust the heap except one hole of about `hole` bytes, with automatic collection
    # off: a failing allocation then raises at once instead of collecting first (so the
    # fill is quick, and the call under test fails exactly where it runs out). The hole
    # is a bytearray in _HOLD[0]. Returns the number of slots used (-1 when the heap
    # has no free block of that size: the call needs a bigger one). The caller then
    # tops the heap up inline (returning from a function frees its heap-allocated
    # frame: _fill's and this one's), drops the hole, collects and calls;
    # _release(j) undoes it all.
    gc.collect()
    try:
        _HOLD[0] = bytearray(hole - 32) if hole >= 32 else None
    except MemoryError:
        return -1  # no such hole left in this heap: the call cannot be squeezed further
    gc.disable()
    return _fill(1, 1 << 20)


def _release(j):
    gc.enable()
    for k in range(j):
        _HOLD[k] = None
    gc.collect()


def _sweep(attempt, check, step=32, limit=16384):
    """Call attempt() first with the heap locked, then with the heap exhausted but for
    a hole of 0, 32, 64, ... bytes, until it succeeds. After each MemoryError,
    check() runs (heap released) and must find the state exactly as before. Returns
    (failures, distinct allocation sizes seen in the MemoryError messages, hole)."""
    micropython = _heap_tools()
    fails = 0
    sizes = []
    box = [None]
    hold = _HOLD
    end = len(hold)
    f = 0.5
    # heap_lock: the first allocation of the call fails
    micropython.heap_lock()
    try:
        attempt()
        box[0] = "ok"
    except MemoryError as e:
        box[0] = e
    micropython.heap_unlock()
    if box[0] == "ok":
        return fails, sizes, -1
    fails += 1
    check()
    hole = 0
    while hole <= limit:
        j = _squeeze(hole)
        if j < 0:
            break
        # top up inline (the frames _squeeze freed on return are free blocks now, and
        # the fill left garbage): until a collection finds nothing more to free
        for _ in range(8):
            while j < end:
                try:
                    hold[j] = f + j
                    j += 1
                except MemoryError:
                    break
            gc.collect()
            if not gc.mem_free():
                break
        hold[0] = None
        gc.collect()
        try:
            attempt()
            box[0] = "ok"
        except MemoryError as e:
            box[0] = e
        _release(j)
        if box[0] == "ok":
            return fails, sizes, hole
        fails += 1
        msg = str(box[0])
        if msg not in sizes:
            sizes.append(msg)
        check()
        hole += step
    if hole > limit:
        raise AssertionError("still MemoryError with %d bytes free" % limit)
    # no free block of `hole` bytes is left in this heap: the call gets the whole heap
    attempt()
    return fails, sizes, hole


def _modules(router, count, first=100):
    from helix_ipc import Response

    for k in range(count):
        mid = first + k
        router.register(mid, "mod%d" % mid, lambda req, mid=mid: Response.success(b"%d" % mid))


def _check_modules(router, count, first=100):
    from helix_ipc import Request

    req = Request(0, "ping")
    for k in range(count):
        mid = first + k
        want = b"%d" % mid
        _eq(router.send(mid, req).data, want, "module %d by id" % mid)
        _eq(router.send("mod%d" % mid, req).data, want, "module %d by name" % mid)
        _eq(router.get_module_id("mod%d" % mid), mid, "get_module_id(mod%d)" % mid)


def _memory_sweep(case, label, scale):
    # One MemoryError scenario: case(k) for k = 0.. items already there, each returning
    # (MemoryErrors, allocation sizes); the figures summed.
    _heap_tools()
    ks = list(range(_n(64, scale, 6)))
    total = 0
    distinct = 0
    for k in ks:
        fails, sizes = case(k)
        total += fails
        distinct += sizes
    return [(label, len(ks)), ("MemoryErrors", total), ("allocation sizes", distinct)]


def _register_case(count):
    # one registry size of memory_register: returns (MemoryErrors, allocation sizes)
    from helix_ipc import MessageRouter, ModuleNotFound, Request, Response

    req = Request(0, "ping")
    router = MessageRouter()
    _modules(router, count)
    mid = 7
    name = "newcomer%d" % count
    resp = Response.success(b"new")

    def handler(request):
        return resp

    def attempt():
        router.register(mid, name, handler)

    def check():
        _eq(router.module_count(), count, "module_count() after a failed register (%d before)" % count)
        _eq(router.is_registered(mid), False, "is_registered(new id) after a failed register")
        _eq(router.get_module_id(name), None, "get_module_id(new name) after a failed register")
        for to in (mid, name):
            e = None
            try:
                router.send(to, req)
            except ModuleNotFound as x:
                e = x
            _true(e is not None, "send(%r) after a failed register did not raise ModuleNotFound" % (to,))
        _check_modules(router, count)

    fails, sizes, hole = _sweep(attempt, check)
    _eq(router.module_count(), count + 1, "module_count() after register succeeded")
    _eq(router.send(mid, req), resp, "send to the new module by id")
    _eq(router.send(name, req), resp, "send to the new module by name")
    _check_modules(router, count)
    return fails, len(sizes)


def memory_register(scale):
    """router.register with the heap exhausted at each of its allocations (heap_lock,
    then growing holes), with 0.. modules already registered (so table growth is
    hit too): after each MemoryError the router is exactly as before (count, the new
    id and name unknown and unreachable, every earlier module reachable by id and
    name), and registering again after the heap is freed works."""
    return _memory_sweep(_register_case, "registry sizes", scale)


def _subscribe_case(count):
    # one bus size of memory_subscribe: returns (MemoryErrors, allocation sizes)
    from helix_ipc import Event, EventBus, EventSubscription, EventTopic

    bus = EventBus()
    calls = [0] * (count + 1)
    ev = Event.Interrupt(1, 0)
    topics = [EventTopic.INTERRUPT]
    for k in range(count):
        def h(event, k=k):
            calls[k] += 1
        t = topics if k % 2 == 0 else [EventTopic.ALL]
        bus.subscribe(EventSubscription("s%d" % k, t, h).with_priority(k * 7 % 256))
    bus.publish(ev)  # index built

    def newcomer(event):
        calls[count] += 1

    sub = EventSubscription("new%d" % count, topics, newcomer)

    def attempt():
        bus.subscribe(sub)

    def check():
        _eq(bus.subscription_count(), count, "subscription_count() after a failed subscribe")
        before = list(calls)
        r = bus.publish(ev)
        _eq(r.handled, count, "handled after a failed subscribe")
        _eq([c - b for c, b in zip(calls, before)], [1] * count + [0], "handlers called after a failed subscribe")

    fails, sizes, hole = _sweep(attempt, check)
    _eq(bus.subscription_count(), count + 1, "subscription_count() after subscribe succeeded")
    # the first publish after a change may build the index: exhaust that too
    snap = [0] * (count + 1)

    def attempt_publish():
        k = 0
        while k <= count:  # a snapshot without allocating (the heap may be locked)
            snap[k] = calls[k]
            k += 1
        bus.publish(ev)

    def check_publish():
        # a publish that raised MemoryError called no handler (a handler's own failure
        # would have been caught and counted); the next one reaches everyone once
        _eq(calls, snap, "handlers called by a publish that raised MemoryError")
        r = bus.publish(ev)
        _eq(r.handled, count + 1, "handled by the publish after a failed one")
        _eq([c - b for c, b in zip(calls, snap)], [1] * (count + 1), "handlers called after a failed publish")
        sub.pause()  # a change again: the next publish meets the same rebuild
        sub.resume()

    fails2, sizes2, hole2 = _sweep(attempt_publish, check_publish)
    fails += fails2
    sizes += sizes2
    before = list(calls)
    r = bus.publish(ev)
    _eq(r.handled, count + 1, "handled after subscribe succeeded")
    _eq([c - b for c, b in zip(calls, before)], [1] * (count + 1), "handlers called after subscribe succeeded")
    return fails, len(sizes)


def memory_subscribe(scale):
    """bus.subscribe, and the first publish after it (where the index is rebuilt),
    with the heap exhausted at each allocation, with 0.. subscriptions already there:
    after each MemoryError the bus is exactly as before (subscription_count, a publish
    reaches exactly the earlier subscribers once each), and subscribing the same
    subscription again after the heap is freed works."""
    return _memory_sweep(_subscribe_case, "bus sizes", scale)


def _queue_case(level):
    # one mailbox level of memory_queue: returns (MemoryErrors, allocation sizes)
    from helix_ipc import MessagePriority, MessageRouter, Request, Response

    prios = (MessagePriority.LOW, MessagePriority.NORMAL, MessagePriority.HIGH, MessagePriority.CRITICAL)
    router = MessageRouter()
    served = []

    def handler(request):
        served.append(request.request_type)
        return Response.ok()

    router.register(1, "mb", handler)
    answered = []
    reqs = []
    for k in range(level):
        r = Request(0, "r%d" % k).with_priority(prios[k % 4])
        reqs.append(r)
    req = Request(0, "new").with_priority(prios[level % 4])

    def cb(response, tag="new"):
        answered.append(tag)

    def fill_mailbox():
        for r in reqs:
            router.queue(1, r, lambda response, t=r.request_type: answered.append(t))

    def expected_order():
        # highest priority first, FIFO within a priority
        order = []
        for p in (MessagePriority.CRITICAL, MessagePriority.HIGH, MessagePriority.NORMAL, MessagePriority.LOW):
            order += [r.request_type for r in reqs if r.priority == p]
        return order

    fill_mailbox()

    def attempt():
        router.queue(1, req, cb)

    def check():
        _eq(router.mailbox_size(1), level, "mailbox_size() after a failed queue")
        _eq(router.messages_refused, 0, "messages_refused after a failed queue")
        del served[:]
        del answered[:]
        _eq(router.process_mailbox(1, level + 1), level, "process_mailbox() after a failed queue")
        want = expected_order()
        _eq(served, want, "requests served after a failed queue")
        _eq(answered, want, "callbacks called after a failed queue (never the failed one)")
        fill_mailbox()

    fails, sizes, hole = _sweep(attempt, check)
    _eq(router.mailbox_size(1), level + 1, "mailbox_size() after queue succeeded")
    del served[:]
    del answered[:]
    _eq(router.process_mailbox(1, level + 2), level + 1, "process_mailbox() after queue succeeded")
    reqs.append(req)
    _eq(sorted(answered), sorted(expected_order()), "callbacks after queue succeeded")
    return fails, len(sizes)


def memory_queue(scale):
    """router.queue with the heap exhausted at each allocation, into an empty (never
    used) mailbox and into mailboxes holding 0.. requests of mixed priorities: after
    each MemoryError mailbox_size and messages_refused are unchanged, the failed
    request's callback is never called, process_mailbox delivers exactly the earlier
    requests in priority order, and queueing again after the heap is freed works."""
    return _memory_sweep(_queue_case, "mailbox levels", scale)


# -- 4. handlers and callbacks raising at every position ----------------------------


def _patterns(n):
    # which of n positions raise: each one alone, first+last, every other one, all
    out = [[p] for p in range(n)]
    if n > 1:
        out.append([0, n - 1])
        out.append(list(range(0, n, 2)))
        out.append(list(range(n)))
    return out


def _hook(owner):
    calls = []
    owner.error_hook = lambda where, error: calls.append((where, error))
    return calls


def _check_hook(calls, want, what):
    # want: [(name the `where` must contain, the exception object)] in order
    _eq(len(calls), len(want), "%s: error_hook calls" % what)
    for k in range(len(want)):
        where, error = calls[k]
        name, exc = want[k]
        _true(error is exc, "%s: error_hook call %d got %r, not the exception raised (%r)" % (what, k, error, exc))
        _true(name in str(where), "%s: error_hook call %d: where=%r does not name %r" % (what, k, where, name))


def _bad_posts_case(n, bad):
    # n IRQ posts, those at positions `bad` with a kind that is no event class (None, a
    # str): they return False, each is counted once (dropped or errors) and reaches the
    # bus's error_hook as an exception object, in posting order; the others are
    # delivered in order. Returns the number of exceptions.
    from helix_ipc import Event, EventBus, EventSubscription, EventTopic

    bus = EventBus(isr_capacity=n)
    hook = _hook(bus)
    got = []
    bus.subscribe(EventSubscription("irq", [EventTopic.INTERRUPT], lambda event: got.append(event.vector)))
    res = []
    for i in range(n):
        kind = Event.Interrupt if i not in bad else (None if i % 2 else "not a kind")
        res.append(bus.publish_from_isr(kind, i, 0))
    bus.poll()
    what = "IRQ posts n=%d bad=%r" % (n, bad)
    _eq(res, [i not in bad for i in range(n)], what + ": publish_from_isr results")
    _eq(got, [i for i in range(n) if i not in bad], what + ": delivered")
    _eq(len(hook), len(bad), what + ": error_hook calls")
    for where, error in hook:
        _true(isinstance(error, Exception), "%s: error_hook got %r, not an exception object" % (what, error))
    st = bus.isr_stats()
    _eq(_stat(st, "posted"), n, what + ": isr_stats().posted")
    _eq(_stat(st, "delivered"), n - len(bad), what + ": isr_stats().delivered")
    _eq(_stat(st, "dropped") + _stat(st, "errors"), len(bad), what + ": isr_stats() dropped + errors")
    return len(bad)


def raising_bus(scale):
    """N subscribers of one topic (N = 1..), some raising: each alone at every
    position, first+last, every other, all; by subscription order and by reversed
    priorities; through publish and through publish_from_isr + poll. Every handler
    runs once in priority order, the result counts errors and handled exactly, the
    bus's handler_errors grows by the raisers, and error_hook got each exception
    object, in order, with the subscription's name."""
    from helix_ipc import Event, EventBus, EventSubscription, EventTopic

    sizes = list(range(1, _n(12, scale, 5) + 1))
    repeats = _n(30, scale, 1)
    publishes = 0
    raised_total = 0
    for n in sizes:
        for raisers in _patterns(n):
            for reverse in (False, True):
                bus = EventBus(isr_capacity=8)
                hook = _hook(bus)
                calls = []
                raised = []
                names = ["h%d_%d" % (n, i) for i in range(n)]
                for i in range(n):
                    def h(event, i=i, calls=calls, raisers=raisers, raised=raised, names=names):
                        calls.append(i)
                        if i in raisers:
                            e = ValueError("handler %d" % i)
                            raised.append((names[i], e))
                            raise e
                    sub = EventSubscription(names[i], [EventTopic.INTERRUPT], h)
                    if reverse:
                        sub.with_priority(200 - i)
                    bus.subscribe(sub)
                order = list(range(n - 1, -1, -1)) if reverse else list(range(n))
                for rep in range(repeats):
                    via_isr = rep % 2 == 1
                    del calls[:]
                    del raised[:]
                    del hook[:]
                    errors0 = bus.handler_errors
                    what = "n=%d raisers=%r reverse=%r isr=%r" % (n, raisers, reverse, via_isr)
                    if via_isr:
                        _eq(bus.publish_from_isr(Event.Interrupt, 3, 0), True, what + ": publish_from_isr")
                        bus.poll()  # (on MicroPython the scheduled drain may have run first)
                    else:
                        r = bus.publish(Event.Interrupt(3, 0))
                        want = (n - len(raisers), 0, 0, len(raisers))
                        _eq((r.handled, r.ignored, r.deferred, r.errors), want, what + ": result")
                    _eq(calls, order, what + ": handlers called")
                    _eq(bus.handler_errors - errors0, len(raisers), what + ": bus.handler_errors")
                    _check_hook(hook, raised, what)
                    publishes += 1
                    raised_total += len(raisers)
                st = bus.isr_stats()
                _eq(_stat(st, "delivered"), repeats // 2, "n=%d: isr_stats().delivered" % n)
                _eq(_stat(st, "errors"), 0, "n=%d: isr_stats().errors (handler failures are the handlers')" % n)
            raised_total += _bad_posts_case(n, raisers)
    return [("publishes", publishes), ("exceptions", raised_total)]


def raising_router(scale):
    """M modules (M = 1..), some of whose handlers raise (every position, as in
    raising_bus): send to each, broadcast, and queue + process_mailbox. A raising
    handler yields a Response.Error naming its module, the others answer; the
    counters messages_routed and handler_errors grow exactly, and router.error_hook
    got each exception object, in order, with the module's name."""
    from helix_ipc import MessageRouter, Request, Response

    sizes = list(range(1, _n(10, scale, 4) + 1))
    repeats = _n(10, scale, 1)
    deliveries = 0
    raised_total = 0
    for m in sizes:
        for raisers in _patterns(m):
            router = MessageRouter()
            hook = _hook(router)
            raised = []
            names = ["mod%d_%d" % (m, j) for j in range(m)]
            for j in range(m):
                def h(request, j=j, raisers=raisers, raised=raised, names=names):
                    if j in raisers:
                        e = RuntimeError("module %d" % j)
                        raised.append((names[j], e))
                        raise e
                    return Response.success(b"%d" % j)
                router.register(j, names[j], h)
            sender = Request(1000, "ping")
            for rep in range(repeats):
                what = "m=%d raisers=%r" % (m, raisers)
                for path in ("send", "broadcast", "queue"):
                    del raised[:]
                    del hook[:]
                    routed0 = router.messages_routed
                    errors0 = router.handler_errors
                    answers = []
                    if path == "send":
                        for j in range(m):
                            answers.append((j, router.send(names[j] if j % 2 else j, sender)))
                    elif path == "broadcast":
                        answers = router.broadcast(sender)
                    else:
                        for j in range(m):
                            router.queue(j, sender, lambda response, j=j, answers=answers: answers.append((j, response)))
                        for j in range(m):
                            _eq(router.process_mailbox(j, 2), 1, what + ": process_mailbox(%d)" % j)
                    _eq(sorted([a[0] for a in answers]), list(range(m)), what + " " + path + ": modules answered")
                    for j, resp in answers:
                        if j in raisers:
                            _true(isinstance(resp, Response.Error), "%s %s: module %d answered %r" % (what, path, j, resp))
                            _true(names[j] in resp.message, "%s %s: %r does not name the module" % (what, path, resp))
                        else:
                            _eq(resp, Response.success(b"%d" % j), what + " " + path + ": answer of module %d" % j)
                    _eq(router.messages_routed - routed0, m, what + " " + path + ": messages_routed")
                    _eq(router.handler_errors - errors0, len(raisers), what + " " + path + ": handler_errors")
                    _check_hook(hook, raised, what + " " + path)
                    deliveries += m
                    raised_total += len(raisers)
    return [("deliveries", deliveries), ("exceptions", raised_total)]


def raising_callbacks(scale):
    """K requests queued with callbacks (mixed priorities), some callbacks raising at
    every position; then the same with the module unregistered before processing.
    Every callback is called once, in mailbox order (or with Response.Error on
    unregister), callback_errors grows by the raisers and router.error_hook got each
    exception object, in order."""
    from helix_ipc import MessagePriority, MessageRouter, Request, Response

    prios = (MessagePriority.NORMAL, MessagePriority.HIGH, MessagePriority.LOW, MessagePriority.CRITICAL)
    rank = {MessagePriority.CRITICAL: 0, MessagePriority.HIGH: 1, MessagePriority.NORMAL: 2, MessagePriority.LOW: 3}
    sizes = list(range(1, _n(12, scale, 5) + 1))
    repeats = _n(10, scale, 1)
    callbacks = 0
    raised_total = 0
    for k in range(len(sizes)):
        n = sizes[k]
        for raisers in _patterns(n):
            for rep in range(repeats):
                unregister = rep % 2 == 1
                router = MessageRouter()
                hook = _hook(router)
                router.register(5, "cbmod", lambda request: Response.success(request.payload))
                calls = []
                raised = []
                reqs = [Request(0, "q", b"%d" % i).with_priority(prios[(i * 3 + k) % 4]) for i in range(n)]
                # the order callbacks run in: highest priority first, FIFO within
                order = sorted(range(n), key=lambda i: (rank[reqs[i].priority], i))
                for i in range(n):
                    def cb(response, i=i, calls=calls, raisers=raisers, raised=raised):
                        calls.append((i, response))
                        if i in raisers:
                            e = KeyError("callback %d" % i)
                            raised.append(("", e))
                            raise e
                    router.queue(5, reqs[i], cb)
                cb_errors0 = router.callback_errors
                what = "n=%d raisers=%r unregister=%r" % (n, raisers, unregister)
                if unregister:
                    _eq(router.unregister(5), True, what + ": unregister")
                else:
                    _eq(router.process_mailbox(5, n + 1), n, what + ": process_mailbox")
                    _eq(router.mailbox_size(5), 0, what + ": mailbox_size")
                got = [c[0] for c in calls]
                if unregister:
                    _eq(sorted(got), list(range(n)), what + ": callbacks answered by unregister")
                    for i, resp in calls:
                        _true(isinstance(resp, Response.Error), "%s: callback %d got %r, not Response.Error" % (what, i, resp))
                else:
                    _eq(got, order, what + ": callbacks called")
                    for i, resp in calls:
                        _eq(resp, Response.success(b"%d" % i), what + ": response of request %d" % i)
                _eq(router.callback_errors - cb_errors0, len(raisers), what + ": callback_errors")
                _check_hook(hook, raised, what)
                callbacks += n
                raised_total += len(raisers)
    return [("callbacks", callbacks), ("exceptions", raised_total)]


# -- 5. soak: N events through bus, router and channels, memory flat ----------------


def _mem():
    # bytes (MicroPython) or blocks (CPython) in use after a full collection
    gc.collect()
    gc.collect()
    if MICROPYTHON:
        return gc.mem_alloc()
    return sys.getallocatedblocks()


def soak(scale):
    """n events through each path: bus.publish (a new event each time, 3 subscribers),
    publish_from_isr + poll, router.send by id and by name, router.queue +
    process_mailbox with callbacks, and channel send + try_recv (plus send_from_isr).
    Every count is exact at the end, and memory in use after gc.collect() (sampled
    every n/16 events) stays within TOLERANCE of the first sample taken after one
    round of warm-up: a leak of one 32-byte block per 16 events per path would
    already exceed it at the smallest scale, and at scale 1 one per 10,000 events."""
    from helix_ipc import (
        Event,
        EventBus,
        EventSubscription,
        EventTopic,
        MessageRouter,
        Request,
        Response,
        channel,
    )

    n = _n(1000000, scale, 20000)
    samples = 16
    chunk = n // samples
    n = chunk * samples
    # MicroPython: bytes; CPython: allocated blocks (objects), see _mem()
    tolerance = 2048 if MICROPYTHON else 64
    bus = EventBus(isr_capacity=64)
    seen = [0, 0, 0, 0]  # bus handlers x3, IRQ handler

    def h0(event):
        seen[0] += 1

    def h1(event):
        seen[1] += 1
        return None

    def h2(event):
        seen[2] += 1

    def hirq(event):
        seen[3] += 1

    bus.subscribe(EventSubscription("t0", [EventTopic.TICK], h0))
    bus.subscribe(EventSubscription("t1", [EventTopic.TICK], h1).with_priority(10))
    bus.subscribe(EventSubscription("all", [EventTopic.ALL], h2))
    bus.subscribe(EventSubscription("irq", [EventTopic.INTERRUPT], hirq))
    hook_b = _hook(bus)
    router = MessageRouter()
    hook_r = _hook(router)
    ok = Response.ok()
    served = [0, 0]
    answered = [0]

    def echo(request):
        served[0] += 1
        return ok

    def worker(request):
        served[1] += 1
        return ok

    def callback(response):
        answered[0] += 1

    router.register(1, "echo", echo)
    router.register(2, "worker", worker)
    req = Request(0, "soak")
    tx, rx = channel(32)
    isr_tx = tx.clone()  # a second open Sender: sends take the locked path half the time
    publish = bus.publish
    post = bus.publish_from_isr
    poll = bus.poll
    send = router.send
    queue = router.queue
    process = router.process_mailbox
    Tick = Event.Tick
    Interrupt = Event.Interrupt
    got = [0]

    def one_chunk(base):
        for i in range(base, base + chunk):
            publish(Tick(i, i))
            post(Interrupt, i & 255, 0)
            send(1, req)
            send("echo", req)
            queue(2, req, callback)
            if i & 15 == 15:
                poll()
                process(2, 16)
            tx.send(i)
            if i & 1:
                isr_tx.send_from_isr(-i)
            if rx.try_recv() != i:
                raise AssertionError("channel: item %d lost or out of order" % i)
            if i & 1:
                if rx.try_recv() != -i:
                    raise AssertionError("channel: send_from_isr item %d lost or out of order" % i)
                got[0] += 1

    mem = []
    t0 = _ms()
    one_chunk(0)  # warm-up round: records, mailboxes, lazy modules
    first = _mem()
    mem.append(first)
    for s in range(1, samples):
        one_chunk(s * chunk)
        mem.append(_mem())
    ms = _elapsed(t0)
    while poll():
        pass
    while process(2, 64):
        pass
    _eq(hook_b, [], "bus error_hook calls")
    _eq(hook_r, [], "router error_hook calls")
    _eq(seen, [n, n, 2 * n, n], "bus handler calls (tick, tick, ALL, interrupt)")
    _eq(served, [2 * n, n], "router handler calls (send, mailbox)")
    _eq(answered[0], n, "mailbox callbacks")
    _eq(router.messages_routed, 3 * n, "router.messages_routed")
    _eq(router.handler_errors, 0, "router.handler_errors")
    _eq(bus.handler_errors, 0, "bus.handler_errors")
    st = bus.isr_stats()
    _eq((_stat(st, "posted"), _stat(st, "delivered"), _stat(st, "dropped")), (n, n, 0), "isr_stats() posted, delivered, dropped")
    st = rx.stats()
    _eq(got[0], n // 2, "items from send_from_isr received in order")
    _eq((_stat(st, "sent"), _stat(st, "received"), _stat(st, "dropped")), (n + n // 2, n + n // 2, 0), "channel stats()")
    growth = max(mem) - first
    _true(growth <= tolerance, "memory grew by %d %s over %d events per path (samples %r)" % (
        growth, "bytes" if MICROPYTHON else "blocks", n, mem))
    unit = "B" if MICROPYTHON else "blocks"
    return [
        ("events per path", n),
        ("events", 6 * n + n // 2),
        ("mem first", "%d %s" % (first, unit)),
        ("mem growth", "%d %s" % (growth, unit)),
        ("mem last-first", "%d %s" % (mem[-1] - first, unit)),
        ("events/s", int((6 * n + n // 2) * 1000 / ms) if ms > 0 else 0),
    ]


# name -> scenario, in the order make stress runs them
SCENARIOS = (
    ("channel_churn", channel_churn),
    ("isr_flood", isr_flood),
    ("schedule_full", schedule_full),
    ("memory_register", memory_register),
    ("memory_subscribe", memory_subscribe),
    ("memory_queue", memory_queue),
    ("raising_bus", raising_bus),
    ("raising_router", raising_router),
    ("raising_callbacks", raising_callbacks),
    ("soak", soak),
)


def get(name):
    for k, fn in SCENARIOS:
        if k == name:
            return fn
    raise KeyError("no scenario %r (have: %s)" % (name, " ".join(k for k, _ in SCENARIOS)))
