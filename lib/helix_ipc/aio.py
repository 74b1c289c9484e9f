# helix_ipc.aio: the asyncio layer. Tasks await channels, one-shots, event streams and
# requests, with deadlines.
#
# Loaded by the first awaiting call (Receiver.recv, Sender.send_async, OneShotReceiver.recv,
# MessageRouter.request/serve) or bus.stream(); asyncio itself is imported by the awaiting
# calls only, so a stream can be created on a build without asyncio, and there the awaiting
# calls raise NotImplementedError naming asyncio.
#
# Wake-ups: each awaited object (a Receiver, a OneShotReceiver, a module's mailbox) gets
# one _Waiters, a linked list of the tasks waiting on it, installed as the object's notify
# hook (Receiver.set_notify, OneShotReceiver._notify, _Mailbox.notify). The hook runs
# wherever progress is made: a task, another thread, a scheduled IRQ drain, or a hard IRQ
# (Sender.send_from_isr). It walks the list and sets each waiter's flag, allocating
# nothing: MicroPython's asyncio.ThreadSafeFlag (set() is safe from a hard IRQ, a
# scheduled callback or another thread), on CPython a _Flag that resolves a future
# directly on the loop's thread and through loop.call_soon_threadsafe from any other.
# A woken task checks its condition again (wake-ups may be shared or early), so the
# library never polls on a timer. Nodes are kept for reuse on the object: a waiting
# task's wake-up allocates nothing beyond what asyncio does (ThreadSafeFlag.wait).
# On the unix port a loop turn takes >= 1 ms while any ThreadSafeFlag is waited on (its
# select.poll calls poll() with a 1 ms timeout before asking non-fd objects); boards ask
# the objects first.
# The hook belongs to this layer once an object was awaited: a set_notify() of another
# hook on it would leave its waiting tasks asleep.
# The list is changed only by the tasks of one event loop (single stores, so a hook
# walking it meanwhile in an IRQ or a thread sees a consistent chain).
# Cancellation and deadlines: a waiter leaves the list in a `finally`, so a cancelled or
# timed-out task leaves nothing behind and the next item goes to a live waiter. A request
# that timed out or was cancelled stays in the mailbox; its answer, when it comes, is
# dropped and counted in router.late_responses.
#
# timeout_ms: an int of milliseconds, 0..2**29-1 (about 6 days, what ticks_diff spans on a
# board), or None for no deadline.
# Modules as tasks (ModuleHost.start_tasks/stop_tasks/load/unload): per loaded module a
# run task (when the module has `run`) then a serve task, both wrapped in _guard, which
# counts an exception in host.task_errors and passes it to router.error_hook; a
# cancellation passes through. The tasks are a list stored in the host's entry (a list)
# for the module with one store.
# Contexts: the awaiting calls from a task; EventStream() and close() from task context;
# the module task calls from a task (start_tasks, load), unload/stop_tasks from task
# context; the hooks from anywhere (see above).

from ._compat import IS_MICROPYTHON, ticks_add, ticks_diff, ticks_ms
from .errors import ChannelClosed, ChannelFull, Timeout, check_int

if False:  # names for the type comments only: mypy reads this, MicroPython compiles it away
    from typing import Any  # noqa: F401


def _aio():
    # asyncio, or NotImplementedError (a build without it; None in sys.modules: blocked)
    try:
        import asyncio
    except ImportError:
        asyncio = None  # type: ignore[assignment]
    if asyncio is None:
        raise NotImplementedError("helix_ipc: awaiting needs asyncio, which this interpreter lacks")
    return asyncio


def _deadline(timeout_ms):
    # Checks timeout_ms (an int >= 0, or None) and asyncio; returns the deadline in ticks_ms.
    _aio()
    if timeout_ms is None:
        return None
    # at most 2**29 - 1 ms (about 6 days): ticks_diff on a board spans +-2**29
    check_int(timeout_ms, "timeout_ms", 0, 0x1FFFFFFF, " (None: no deadline)")
    return ticks_add(ticks_ms(), timeout_ms)


if not IS_MICROPYTHON:  # MicroPython has asyncio.ThreadSafeFlag (no class made there)

    class _Flag:
        # CPython's stand-in for ThreadSafeFlag: set() from any thread; one task waits at a time.
        def __init__(self):
            self._state = False
            self._fut = None  # type: Any
            self._loop = None  # type: Any
            self._tid = 0

        def set(self):
            self._state = True  # first: a wait() that has not stored its future yet sees it
            fut = self._fut
            if fut is not None:
                import _thread

                if _thread.get_ident() == self._tid:
                    _resolve(fut)
                else:
                    try:
                        self._loop.call_soon_threadsafe(_resolve, fut)
                    except RuntimeError:  # the loop is closed: nobody waits any more
                        pass

        def clear(self):
            self._state = False

        async def wait(self):
            import _thread
            import asyncio

            loop = asyncio.get_running_loop()  # type: ignore[attr-defined]  # CPython only
            fut = loop.create_future()
            self._loop = loop
            self._tid = _thread.get_ident()
            self._fut = fut  # after loop and tid: set() reads them once it sees the future
            try:
                if not self._state:
                    await fut
            finally:
                self._fut = None
            self._state = False


def _resolve(fut):
    if not fut.done():
        fut.set_result(None)


def _new_flag():
    if IS_MICROPYTHON:
        return _aio().ThreadSafeFlag()
    return _Flag()


class _Node:
    # One waiting task: its flag, and the next node (of the waiting list or the free list).
    def __init__(self):
        self.flag = _new_flag()
        self.next = None  # type: Any


class _Waiters:
    # The tasks waiting on one object; `wake` (bound once: calling it allocates nothing)
    # is the object's notify hook and may run in a hard IRQ.
    def __init__(self):
        self.head = None  # type: Any
        self.free = None  # type: Any
        self.wake = self._wake

    def _wake(self):
        n = self.head
        while n is not None:
            n.flag.set()
            n = n.next

    def add(self):
        n = self.free
        if n is None:
            n = _Node()
        else:
            self.free = n.next
            n.flag.clear()
        n.next = self.head
        self.head = n  # published with one store
        return n

    def remove(self, node):
        p = self.head
        if p is node:
            self.head = node.next
        else:
            while p.next is not node:
                p = p.next
            p.next = node.next
        node.next = self.free
        self.free = node


def _waiters(obj):
    # obj's _Waiters, made and installed as its notify hook the first time.
    ws = getattr(obj, "_aio", None)
    if ws is None:
        ws = _Waiters()
        obj._aio = ws
        if hasattr(obj, "set_notify"):
            obj.set_notify(ws.wake)  # a Receiver
        elif hasattr(obj, "notify"):
            obj.notify = ws.wake  # a mailbox
        else:
            obj._notify = ws.wake  # a OneShotReceiver
    return ws


def _sleep(node, deadline, timeout_ms):
    # An awaitable: node's flag, or Timeout once the deadline has passed. Without a
    # deadline it is asyncio's own wait (no coroutine of ours around it).
    if deadline is None:
        return node.flag.wait()
    return _timed(node, deadline, timeout_ms)


async def _timed(node, deadline, timeout_ms):
    left = ticks_diff(deadline, ticks_ms())
    if left <= 0:
        raise Timeout("deadline passed (timeout_ms=%d)" % timeout_ms)
    asyncio = _aio()
    try:
        if IS_MICROPYTHON:
            await asyncio.wait_for_ms(node.flag.wait(), left)
        else:
            await asyncio.wait_for(node.flag.wait(), left / 1000)
    except asyncio.TimeoutError:
        raise Timeout("deadline passed (timeout_ms=%d)" % timeout_ms)


# -- channels ---------------------------------------------------------------------------

def recv(rx, timeout_ms=None):
    """`await rx.recv(timeout_ms)`: the oldest item; waits while the channel is empty and
    open; ChannelClosed once closed and drained; Timeout when the deadline passes."""
    return _recv(rx, _deadline(timeout_ms), timeout_ms)


async def _recv(rx, deadline, timeout_ms):
    if rx._received != rx._sent:
        return rx.try_recv()
    ws = _waiters(rx)
    node = ws.add()
    try:
        while rx._received == rx._sent and rx._senders and not rx._closed:
            await _sleep(node, deadline, timeout_ms)
    finally:
        ws.remove(node)
    return rx.try_recv()  # the item, or ChannelClosed


class Items:
    """`async for item in rx:` receives until the channel is closed and drained."""

    def __init__(self, rx):
        self._rx = rx

    def __aiter__(self):
        return self

    async def __anext__(self):
        try:
            return await recv(self._rx)
        except ChannelClosed:
            raise StopAsyncIteration


def send(tx, item, timeout_ms=None):
    """`await tx.send_async(item, timeout_ms)`: sends, waiting while the channel is full;
    ChannelClosed when closed; Timeout when the deadline passes."""
    return _send(tx, item, _deadline(timeout_ms), timeout_ms)


def _full(rx):
    return ((rx._sent - rx._received) & 0x1FFFFFFF) >= rx.capacity


async def _send(tx, item, deadline, timeout_ms):
    rx = tx._rx
    if not _full(rx):
        tx.send(item)  # sent, or ChannelClosed (or ChannelFull: another sender was first)
        return
    ws = _waiters(rx)
    node = ws.add()
    try:
        while True:
            if tx.is_closed() or not _full(rx):
                try:
                    tx.send(item)
                    return
                except ChannelFull:  # another thread took the slot first (counted as dropped)
                    pass
            await _sleep(node, deadline, timeout_ms)
    finally:
        ws.remove(node)


def recv_once(rx, timeout_ms=None):
    """`await oneshot_rx.recv(timeout_ms)`: the value once sent; ChannelClosed when taken or
    abandoned; Timeout when the deadline passes."""
    return _recv_once(rx, _deadline(timeout_ms), timeout_ms)


async def _recv_once(rx, deadline, timeout_ms):
    if rx._state == 0:  # channels._EMPTY
        ws = _waiters(rx)
        node = ws.add()
        try:
            while rx._state == 0:
                await _sleep(node, deadline, timeout_ms)
        finally:
            ws.remove(node)
    return rx.try_recv()


# -- the IRQ ring's pump ----------------------------------------------------------------

def pump(bus):
    """`await bus.pump()`: delivers the bus's IRQ posts (publish_from_isr) as they arrive,
    until cancelled. While a pump runs, the ring's drain is scheduled on the pump instead
    of micropython.schedule: a post that would schedule a drain sets the pump's flag
    (allocation-free, as safe in a hard IRQ as scheduling), and the pump drains at most
    16 posts per turn, asking again for the rest. Needed where nothing runs the scheduled
    drain while the loop waits: CPython (no scheduler) and the unix port (no scheduled
    callbacks inside a blocking poll); on a board it moves the drain into a task, off the
    schedule queue. The last pump to end gives the ring its scheduler back."""
    _aio()
    return _pump(bus, [True, None])


class _Pumps:
    # The pumps of one IRQ ring (its _Waiters) and the scheduler they stand in for.
    def __init__(self, q):
        self.waiters = _Waiters()
        self.saved = q._schedule
        wake = self.waiters.wake
        self.schedule = lambda _cb, _arg: wake()  # made once: calling it allocates nothing


async def _pump(bus, alive):
    # alive: [runs, its waiting node while it stands in for the scheduler]. alive[0] False
    # ends it too: how a TickSource stopped from a handler the pump itself runs ends it
    # (asyncio cannot cancel the running task).
    asyncio = _aio()
    q = bus._isr
    p = getattr(q, "_pumps", None)
    if p is None:
        p = q._pumps = _Pumps(q)
    node = alive[1] = p.waiters.add()
    if q._schedule is not p.schedule:  # the first pump: drains are asked of the pumps now
        q._schedule = p.schedule
        q._pending = False
    try:
        while alive[0]:
            if not len(q):
                await node.flag.wait()
                continue
            q.poll(0)  # as a scheduled drain: at most DRAIN_BATCH; the rest asks again
            await asyncio.sleep(0)
    finally:
        end_pump(bus, alive)


def end_pump(bus, alive):
    # Ends a pump started with `alive` (its next turn returns) and takes it off the ring
    # now; the last one gives the ring its own scheduler back. Idempotent. Called by the
    # pump's finally and by TickSource.stop(): a KeyboardInterrupt out of asyncio.run()
    # leaves the pump task queued, and MicroPython's asyncio never runs its finally.
    alive[0] = False
    node = alive[1]
    if node is None:  # never ran, or already ended
        return
    alive[1] = None
    q = bus._isr
    p = q._pumps
    ws = p.waiters
    ws.remove(node)
    if ws.head is None:  # the last pump: the ring's own scheduler again
        q._schedule = p.saved
        q._pending = p.saved is None  # no scheduler: "always pending", poll() drains
        if p.saved is not None and len(q):
            q._kick()  # what is left goes to micropython.schedule


def start_pump(bus, alive):
    # A pump task (ended by cancel() or end_pump(bus, alive)) when called from a running
    # event loop's task, else None.
    asyncio = _aio()
    try:
        asyncio.current_task()  # RuntimeError outside a loop (CPython) or a task (MicroPython)
    except RuntimeError:
        return None
    return asyncio.create_task(_pump(bus, alive))


# -- event streams ----------------------------------------------------------------------

class EventStream(Items):
    """bus.stream(topics, capacity=16): a subscription whose events queue for a task.

    `async for event in stream:`, `await stream.next(timeout_ms=None)`. When the queue is
    full the newest event is dropped and counted in `dropped`. `close()` unsubscribes
    (also a context manager); then next() raises ChannelClosed and `async for` ends.
    Creating one needs no asyncio; awaiting does."""

    def __init__(self, bus, topics, capacity=16):
        from .bus import EventSubscription
        from .channels import channel

        check_int(capacity, "capacity", 1, 65536)
        sub = EventSubscription("stream", topics, self._put)  # checks topics
        self._tx, self._rx = channel(capacity)
        self._post = self._tx.send_from_isr  # bound once: the handler allocates nothing
        self._bus = bus
        self.id = bus.subscribe(sub)

    def _put(self, event):
        self._post(event)  # never raises; a refusal (full) is counted by the channel

    @property
    def dropped(self):
        """Events dropped because the queue was full."""
        return (self._rx._dropped + self._tx._busy) & 0x1FFFFFFF

    def __len__(self):
        return len(self._rx)

    def next(self, timeout_ms=None):
        """`await stream.next(timeout_ms)`: the next event; ChannelClosed once closed."""
        return recv(self._rx, timeout_ms)

    def close(self):
        """Unsubscribe; queued events are discarded and waiting tasks get ChannelClosed."""
        rx = self._rx
        if rx._closed:
            return
        self._bus.unsubscribe(self.id)
        rx.close()  # wakes the waiting tasks
        rx.drain()

    def is_closed(self):
        return self._rx._closed

    def __enter__(self):
        return self

    def __exit__(self, _t, _v, _tb):
        self.close()


# -- requests ---------------------------------------------------------------------------

class _Reply:
    # One awaited request: its response, and the flag of the task awaiting it. The
    # answer (any thread) and the task giving up decide under the router's lock (never
    # held while callbacks run) whether the response is taken or late.
    def __init__(self, router):
        self.router = router
        self.response = None  # type: Any
        self.waiting = True  # False once the task gave up (timed out or cancelled)
        self.flag = _new_flag()
        self.answer = self._answer

    def _answer(self, response):
        r = self.router
        lock = r._lock
        lock.acquire()
        if self.waiting:
            self.response = response
        else:
            r.late_responses = (r.late_responses + 1) & 0x1FFFFFFF
        lock.release()
        self.flag.set()

    def give_up(self):
        # the task timed out or was cancelled: an answer that came meanwhile is late too
        r = self.router
        lock = r._lock
        lock.acquire()
        self.waiting = False
        if self.response is not None:
            r.late_responses = (r.late_responses + 1) & 0x1FFFFFFF
        lock.release()


def request(router, to, req, timeout_ms=None):
    """`await router.request(to, request, timeout_ms)`: queues the request (priority order,
    as queue()) and returns its Response. ModuleNotFound and ChannelFull at once, Timeout
    when no response came in time (a later one is dropped, counted in late_responses)."""
    return _request(router, to, req, _deadline(timeout_ms), timeout_ms)


async def _request(router, to, req, deadline, timeout_ms):
    reply = _Reply(router)
    router.queue(to, req, reply.answer)
    try:
        while reply.response is None:
            await _sleep(reply, deadline, timeout_ms)
    except BaseException:  # Timeout or cancelled: give up; an answer from now on is late
        reply.give_up()
        raise
    return reply.response


def serve(router, module_id):
    """`await router.serve(module_id)`: answers the module's mailbox as requests arrive,
    highest priority first, until the module is unregistered or the task is cancelled.
    ModuleNotFound for an unknown module."""
    _aio()
    m = router._find(module_id)
    if m is None:
        router._missing(module_id, "serve", "module_id")
    return _serve(router, m)


async def _serve(router, m):
    from .router import _Mailbox

    asyncio = _aio()
    lock = router._lock
    lock.acquire()
    mb = m.mailbox
    if mb is None and router._ids.get(m.id) is m:
        mb = m.mailbox = _Mailbox(m.capacity)  # so that the first queue() wakes us
    lock.release()
    if mb is None:
        return  # unregistered meanwhile
    ws = _waiters(mb)
    node = ws.add()
    try:
        while router._ids.get(m.id) is m:
            if not mb.count:
                await node.flag.wait()
                continue
            n = 8  # a bounded batch per turn: a flood does not starve the other tasks
            while n and router._process_one(m):
                n -= 1
            await asyncio.sleep(0)
    finally:
        ws.remove(node)


# -- modules as tasks -------------------------------------------------------------------

async def _guard(host, name, what, fn, arg):
    # await fn(arg); an exception is counted and reported, a cancellation passes through
    try:
        await fn(arg)
    except Exception as e:
        host.task_errors = (host.task_errors + 1) & 0x1FFFFFFF
        host.router._report("module %r %s" % (name, what), e)


def module_tasks(host, name, module, ctx):
    # The module's tasks, run first (its code before the first await runs before any
    # request is served); a MemoryError leaves no task behind.
    asyncio = _aio()
    run = getattr(module, "run", None)
    tasks = [None, None] if run is not None else [None]
    try:
        if run is not None:
            tasks[1] = asyncio.create_task(_guard(host, name, "run", run, ctx))
        tasks[0] = asyncio.create_task(_guard(host, name, "serve", host.router.serve, ctx.module_id))
    except BaseException:
        cancel(tasks)
        raise
    return tasks


def cancel(tasks):
    # Cancels each task but the running one (MicroPython's asyncio refuses to cancel it).
    asyncio = _aio()
    try:
        cur = asyncio.current_task()
    except (RuntimeError, ValueError):  # no loop or no task running (CPython, MicroPython)
        cur = None
    for t in tasks:
        if t is not None and t is not cur:
            t.cancel()


def start_tasks(host):
    _aio()
    host._started = True
    loaded = host._loaded
    for name in list(loaded):
        e = loaded[name]
        if e[3] is None:
            e[3] = module_tasks(host, name, e[0], e[1])


def stop_tasks(host):
    host._started = False
    loaded = host._loaded
    for name in list(loaded):
        e = loaded[name]
        if e[3] is not None:
            cancel(e[3])
            e[3] = None
