# helix_ipc.router: point-to-point requests between modules, by id or name, with a
# bounded priority mailbox per module.
#
# Contexts: task context only (main loop, scheduler callbacks, threads), never a hard IRQ:
# `send` runs user handlers, `queue` takes a lock and allocates a mailbox on first use.
# Every method may be called from inside a handler or a callback: the lock is never held
# while user code runs.
#
# Registry: `_ids` (module id -> _Module) and `_names` (name -> _Module), two plain dicts.
# `send` reads them without a lock; register/unregister change them in place under the
# lock. What a reader on another core sees meanwhile (rp2 runs _thread on core 1, and the
# unix port, without a GIL; CPython and esp32 have one, which makes each dict operation
# atomic):
# - An insert into a MicroPython dict that has a free slot writes the key, then the value,
#   into that slot. A reader probing meanwhile finds no key, or the key with no value yet,
#   which `dict.get` reports as absent, or both: the state before or after the register.
#   A delete marks one slot, then clears its value: the reader sees the module or not.
#   (A subscript `d[key]` would hand the cleared value on as a NULL object, which is why
#   the readers use `dict.get`, which reads the value once and treats NULL as absent.)
# - A dict with no free slot is rehashed in place: its size and table pointer change in
#   separate stores and the old table is freed, so a reader could probe a freed or
#   wrongly sized table. The router never lets MicroPython resize a published dict: it
#   makes each table with room for `_room` keys (MicroPython's dict.fromkeys sizes its
#   table from the len() of its argument), inserts in place while keys plus deleted slots
#   stay under 7/8 of that, and past it copies each table into a new one with room for
#   1.5 times the keys, published with a single store; a reader holding an old table
#   keeps a consistent, stale view. The registry grows in pieces no larger than one table.
# MemoryError: register, unregister, queue and MessageRouter() build what they need
# first (the module record, new tables, an Error response, a mailbox and its ring) and
# store after that, so a MemoryError leaves the router exactly as it was.
#
# The hot paths with try blocks (send, queue, _deliver) are @micropython.native: their
# frames live on the C stack, where a bytecode function with `except X as e` or more than
# 11 words of state would allocate its frame on every call (boards have no sys.exc_info
# to catch with a bare `except:` instead). They call bytecode only to raise. The rest is
# bytecode with frames that fit the C stack (native code costs heap on a board).
# send classifies `to` by its class (an exact int or str, or an Id/Name, whose value is
# looked up): True, 1.0 and other types never reach a module, they raise TypeError.
# Failures that cannot be raised (a handler that raised or returned a non-Response, a
# callback that raised) are counted and passed to `error_hook(where, error)`.

import sys

from ._compat import const, micropython, new_lock
from .errors import AlreadyRegistered, ChannelFull, ModuleNotFound, check_int
from .messages import Error, ModuleAddress, Rejected, Response, check_name, type_error
from .messages import Id as _Id, Name as _Name, Request as _Request, Success as _Success

if False:  # names for the type comments only: mypy reads this, MicroPython compiles it away
    from typing import Any, NoReturn  # noqa: F401

_MASK = const((1 << 29) - 1)  # counters wrap here: they stay small ints on 32-bit boards
_MAX_CAPACITY = const(65536)

# Module-level names for the hot paths (builtins are found by a linear scan on MicroPython).
_int = int
_str = str
_callable = callable
_RESPONSES = {Response: 0, Rejected: 0, Error: 0}  # exact classes but Success (tested first)


def _table(src, room):
    # A copy of dict `src` whose table has `room` slots (see the header).
    d = dict.fromkeys(bytes(room))
    del d[0]
    d.update(src)
    return d


class _NoLock:
    # The lock of builds without threads.
    def acquire(self):
        return True

    release = acquire


class _Mailbox:
    # A module's queued requests: per MessagePriority a ring of [request, callback, ...]
    # slot pairs holding the whole mailbox, made the first time the priority is used and
    # reused after. Guarded by the router's lock. `notify` (None or a callable without
    # arguments) is called after each queue and after the module's unregister, outside
    # the lock: how a waiter (aio's serve) is woken.

    def __init__(self, capacity):
        self.capacity = capacity
        self.count = 0
        self.rings = [None, None, None, None]  # type: list[Any]
        self.heads = [0, 0, 0, 0]
        self.lens = [0, 0, 0, 0]
        self.callback = None  # the callback of the request pop() returned last
        self.notify = None  # type: Any

    def push(self, p, request, callback):
        # Queue one request at priority p (a free slot checked). A MemoryError making the
        # priority's ring leaves the mailbox as it was.
        n = self.capacity
        ring = self.rings[p]
        if ring is None:
            ring = self.rings[p] = [None] * (n + n)
        i = self.heads[p] + self.lens[p]
        if i >= n:
            i -= n
        i += i
        ring[i] = request
        ring[i + 1] = callback
        self.lens[p] += 1
        self.count += 1

    def pop(self):
        # The oldest request of the highest priority (count must be > 0).
        lens = self.lens
        p = 3
        while not lens[p]:
            p -= 1
        ring = self.rings[p]
        h = self.heads[p]
        i = h + h
        request = ring[i]
        self.callback = ring[i + 1]
        ring[i] = None
        ring[i + 1] = None
        h += 1
        self.heads[p] = 0 if h == self.capacity else h
        lens[p] -= 1
        self.count -= 1
        return request


class _Module:
    # One registration.
    def __init__(self, module_id, name, handler, capacity):
        self.id = module_id
        self.name = name
        self.handler = handler
        self.capacity = capacity
        self.mailbox = None  # type: Any  # made by the first queue()

    def label(self):
        return "module %r (id %d)" % (self.name, self.id)


class MessageRouter:
    """Routes requests to registered modules, by id (int >= 0), name (str) or
    ModuleAddress.Id/Name.

    `send` calls the module's handler now; `queue` puts the request in the module's
    bounded mailbox (highest priority first, FIFO within a priority) for a later
    `process_mailbox`. A handler that raises or returns something other than a
    Response yields `Response.Error` naming the module.

    Counters (wrapping at 2**29): `messages_routed` (requests handed to a handler),
    `handler_errors` (of those, how many raised or returned a non-Response),
    `messages_refused` (queue() calls refused: mailbox full), `callback_errors` (response
    callbacks that raised), `messages_discarded` (queued requests without a callback that
    unregister dropped). `error_hook(where, error)` receives each handler and callback
    failure with the exception (or the bad result); None: one line on stderr.
    """

    def __init__(self, mailbox_capacity=64):
        self._capacity = check_int(mailbox_capacity, "mailbox_capacity", 1, _MAX_CAPACITY)
        self._lock = new_lock() or _NO_LOCK
        self._ids = {}  # type: dict[int, _Module]
        self._names = {}  # type: dict[str, _Module]
        self._room = 0  # slots of each table
        self._dead = 0  # deletions since the tables were made (deleted slots, at most)
        self.error_hook = None  # type: Any
        self.messages_routed = 0
        self.handler_errors = 0
        self.messages_refused = 0
        self.callback_errors = 0
        self.messages_discarded = 0

    # -- registry ------------------------------------------------------------------

    def register(self, module_id, name, handler, mailbox_capacity=None):
        """Register `handler(request) -> Response` under `module_id` and `name`.
        `mailbox_capacity` (default: the router's) bounds the module's mailbox.
        Raises AlreadyRegistered when the id or the name is taken."""
        check_int(module_id, "module_id", 0)
        check_name(name)
        if not callable(handler):
            raise type_error("handler", "callable", handler)
        if mailbox_capacity is None:
            mailbox_capacity = self._capacity
        m = _Module(module_id, name, handler, check_int(mailbox_capacity, "mailbox_capacity", 1, _MAX_CAPACITY))
        lock = self._lock
        lock.acquire()
        try:
            ids = self._ids
            names = self._names
            a = ids.get(module_id)
            b = names.get(name)
            if a is not None or b is not None:
                taken = []
                if a is not None:
                    taken.append("id %d: %s" % (module_id, a.label()))
                if b is not None and b is not a:
                    taken.append("name %r: %s" % (name, b.label()))
                raise AlreadyRegistered("already registered: " + "; ".join(taken))
            n = len(ids) + 1
            if 8 * (n + self._dead) > 7 * self._room:
                # New tables, one at a time, each a copy with room (the old one can be
                # collected once readers are done with it). A MemoryError in the second
                # leaves the first one published: the same entries, only more room.
                room = (n + n // 2 + 4) | 1  # odd: hash % room then uses every bit
                self._ids = _table(ids, room)
                self._names = _table(names, room)
                self._room = room
                self._dead = 0
            self._names[name] = m  # in place: there is a free slot
            self._ids[module_id] = m
        finally:
            lock.release()

    def unregister(self, module_id):
        """Remove the module; False if no module has that id. Every request still
        waiting in its mailbox with a callback is answered with Response.Error."""
        check_int(module_id, "module_id", 0)
        m = self._ids.get(module_id)
        if m is None:
            return False
        gone = None
        if m.mailbox is not None:
            gone = Error("%s was unregistered before handling the request" % m.label())
        lock = self._lock
        lock.acquire()
        if self._ids.get(module_id) is not m:  # another thread was first
            lock.release()
            return False
        del self._ids[module_id]
        del self._names[m.name]
        self._dead += 1
        mb = m.mailbox
        m.mailbox = None
        lock.release()
        while mb is not None and mb.count:  # mb is ours alone now
            request = mb.pop()
            if mb.callback is None:
                self.messages_discarded = (self.messages_discarded + 1) & _MASK
            else:
                if gone is None:  # its first queue raced with this unregister
                    gone = Error("%s was unregistered before handling the request" % m.label())
                self._deliver(m, request, mb.callback, gone)
        if mb is not None and mb.notify is not None:  # a serve() task ends
            mb.notify()
        return True

    def module_count(self):
        """How many modules are registered."""
        return len(self._ids)

    def is_registered(self, module_id):
        """True if a module is registered under this id (or name, or ModuleAddress)."""
        if self._find(module_id) is not None:
            return True
        try:
            self._missing(module_id, "is_registered", "module_id")
        except ModuleNotFound:
            pass
        return False

    def get_module_id(self, name):
        """The id registered under `name`, or None."""
        m = self._names.get(check_name(name))
        return None if m is None else m.id

    def _find(self, to):
        # The _Module registered under `to`, or None (also for a `to` of a wrong type).
        c = to.__class__
        if c is _str:
            return self._names.get(to)
        if c is _int:
            return self._ids.get(to)
        if c is _Name:
            return self._names.get(to.value)
        if c is _Id:
            return self._ids.get(to.value)
        return None

    def _missing(self, to, what, arg="to"):
        # type: (Any, str, str) -> NoReturn
        # Raise the error for a `to` that _find did not resolve.
        c = to.__class__
        if c is int:
            to = "id %d" % check_int(to, arg, 0)
        elif c is str:
            to = repr(check_name(to, arg))
        elif c is ModuleAddress:
            raise ValueError("%s: ModuleAddress.BROADCAST is no module; use broadcast()" % what)
        elif c is _Id or c is _Name:
            to = repr(to)
        else:
            raise type_error(what + ": " + arg, "an int, a str or a ModuleAddress", to)
        raise ModuleNotFound("%s: no module %s" % (what, to))

    # -- request/response ---------------------------------------------------------

    @micropython.native
    def send(self, to, request):
        """Call the module's handler with `request` now and return its Response.
        `to`: a module id (int), a name (str), ModuleAddress.Id or .Name. Raises
        ModuleNotFound, TypeError (a `to` of another type, or a request that is not a
        Request) or ValueError (ModuleAddress.BROADCAST)."""
        c = to.__class__
        if c is _str:
            m = self._names.get(to)
        elif c is _int:
            m = self._ids.get(to)
        elif c is _Name:
            m = self._names.get(to.value)
        elif c is _Id:
            m = self._ids.get(to.value)
        else:
            m = None
        if m is None or request.__class__ is not _Request:
            return self._send_checked(m, to, request)
        self.messages_routed = (self.messages_routed + 1) & _MASK
        try:
            r = m.handler(request)
        except Exception as e:
            return self._failed(m, e)
        c = r.__class__
        if c is _Success or c in _RESPONSES:
            return r
        return self._failed(m, r)

    def _send_checked(self, m, to, request):
        # send's rare cases: no such module, a bad `to`, or a request that is not exactly a Request.
        if m is None:
            self._missing(to, "send")
        if not isinstance(request, _Request):
            raise type_error("request", "a Request", request)
        return self._deliver(m, request)

    @micropython.native
    def _deliver(self, m, request, callback=None, response=None):
        # Call m's handler (unless `response` is given) and return its Response; then
        # pass that to `callback` if any: a callback that raises is counted and reported.
        if response is None:
            self.messages_routed = (self.messages_routed + 1) & _MASK
            try:
                response = m.handler(request)
            except Exception as e:
                response = self._failed(m, e)
            c = response.__class__
            if c is not _Success and c not in _RESPONSES:
                response = self._failed(m, response)
        if callback is not None:
            try:
                callback(response)
            except Exception as e:
                self.callback_errors = (self.callback_errors + 1) & _MASK
                self._report("callback of request %d to %s" % (request.id, m.label()), e)
        return response

    def _failed(self, m, x):
        # The handler of m raised x or returned x: a Response subclass passes; anything
        # else is counted, reported and answered with Response.Error.
        if isinstance(x, Response):
            return x
        self.handler_errors = (self.handler_errors + 1) & _MASK
        where = m.label()
        self._report(where, x)
        if isinstance(x, BaseException):
            return Error("%s: handler raised %s: %s" % (where, type(x).__name__, x))
        return Error("%s: handler returned %s, not a Response" % (where, type(x).__name__))

    def _report(self, where, error):
        # error_hook(where, error), or one line on stderr; a hook that raises is printed too.
        hook = self.error_hook
        if hook is not None:
            try:
                hook(where, error)
                return
            except Exception as e:
                where = "router.error_hook"
                error = e
        print("helix_ipc: %s: %r" % (where, error), file=sys.stderr)

    def broadcast(self, request):
        """Send `request` to every registered module except its sender, in ascending
        module id order; returns [(module_id, Response)]. Modules registered while the
        broadcast runs are not included; modules unregistered meanwhile are skipped."""
        if not isinstance(request, _Request):
            raise type_error("request", "a Request", request)
        sender = self._find(request.sender)
        out = []
        for module_id in sorted(self._ids):
            m = self._ids.get(module_id)
            if m is not None and m is not sender:
                out.append((module_id, self._deliver(m, request)))
        return out

    # -- mailboxes ----------------------------------------------------------------

    @micropython.native
    def queue(self, to, request, callback=None):
        """Put `request` in the module's mailbox for a later process_mailbox;
        `callback(response)` is called exactly once with the outcome (the handler's
        response, or Response.Error if the module is unregistered first).
        Raises ChannelFull when the mailbox is full, ModuleNotFound for no such module."""
        m = self._find(to)
        if m is None or request.__class__ is not _Request or (callback is not None and not _callable(callback)):
            self._check_queue(m, to, request, callback)  # raises, but for a Request subclass
        p = request.priority
        if p.__class__ is not _int or p < 0 or p > 3:
            check_int(p, "priority", 0, 3)  # raises
        lock = self._lock
        lock.acquire()
        try:
            mb = m.mailbox
            if mb is None:
                mb = _Mailbox(m.capacity)  # stored once the request is in
            if mb.count >= mb.capacity or self._ids.get(m.id) is not m:
                self._refuse(m)  # raises
            mb.push(p, request, callback)
            m.mailbox = mb
        finally:
            lock.release()
        if mb.notify is not None:
            mb.notify()

    def _check_queue(self, m, to, request, callback):
        # queue's argument errors (kept out of its native code).
        if m is None:
            self._missing(to, "queue")
        if not isinstance(request, _Request):
            raise type_error("request", "a Request", request)
        if callback is not None and not callable(callback):
            raise type_error("callback", "callable or None", callback)

    def _refuse(self, m):
        # queue found the module unregistered meanwhile, or its mailbox full (lock held).
        alive = self._ids.get(m.id) is m
        if not alive:
            raise ModuleNotFound("queue: %s was unregistered" % m.label())
        self.messages_refused = (self.messages_refused + 1) & _MASK
        raise ChannelFull("queue: the mailbox of %s is full (%d requests)" % (m.label(), m.capacity))

    def process_mailbox(self, module_id, max_count):
        """Deliver up to `max_count` queued requests to the module, highest priority
        first and FIFO within a priority, calling each one's callback with the
        response; returns how many were delivered."""
        m = self._find(module_id)
        if m is None:
            self._missing(module_id, "process_mailbox", "module_id")
        if max_count.__class__ is not _int or max_count < 0:
            check_int(max_count, "max_count", 0)  # raises (its frame would be on the heap)
        done = 0
        while done < max_count and self._process_one(m):
            done += 1
        return done

    def _process_one(self, m):
        # Deliver m's next queued request; False if there is none.
        lock = self._lock
        lock.acquire()
        mb = m.mailbox
        if mb is None or not mb.count:
            lock.release()
            return False
        request = mb.pop()
        callback = mb.callback
        mb.callback = None
        lock.release()
        self._deliver(m, request, callback)
        return True

    def mailbox_size(self, module_id):
        """How many requests wait in the module's mailbox."""
        m = self._find(module_id)
        if m is None:
            self._missing(module_id, "mailbox_size", "module_id")
        mb = m.mailbox
        return 0 if mb is None else mb.count

    late_responses = 0  # responses to request()s that had timed out or were cancelled

    def request(self, to, request, timeout_ms=None):
        """`await router.request(to, request, timeout_ms=None) -> Response`: see helix_ipc.aio."""
        from .aio import request as ask
        return ask(self, to, request, timeout_ms)

    def serve(self, module_id):
        """`await router.serve(module_id)`: see helix_ipc.aio."""
        from .aio import serve
        return serve(self, module_id)

    def mailbox_capacity(self, module_id):
        """How many requests the module's mailbox holds at most."""
        m = self._find(module_id)
        if m is None:
            self._missing(module_id, "mailbox_capacity", "module_id")
        return m.capacity


_NO_LOCK = _NoLock()

# -- the global router -------------------------------------------------------------

_global = [None]  # type: list[Any]
_global_lock = new_lock() or _NO_LOCK  # a lock object only: no hardware, nothing started


def global_router():
    """The process-wide MessageRouter (created on first use)."""
    r = _global[0]
    if r is None:
        _global_lock.acquire()
        try:
            r = _global[0]
            if r is None:
                r = _global[0] = MessageRouter()
        finally:
            _global_lock.release()
    return r


def send_request(to, request):
    """global_router().send(to, request)."""
    return global_router().send(to, request)


def send_to(name, request):
    """global_router().send(name, request) for a module name (str)."""
    return global_router().send(check_name(name), request)
