# helix_ipc.router: point-to-point request/response between modules, with a bounded
# priority mailbox per module.
#
# Contexts: task context only (main loop, scheduler callbacks, threads). Nothing here
# is hard-IRQ safe: `send` runs user handlers and `queue` takes a lock.
#
# Concurrency: the registry is copy-on-write. register/unregister make changed copies
# of the lookup dicts under the router's lock (dict.copy(): one allocation, C speed)
# and publish them with single attribute stores, so `send` looks a module up without
# any lock (threads without a GIL never see a dict mid-resize). The lock also guards
# the mailboxes. It is never held while user code runs, so handlers and callbacks may
# call the router (send, queue, register, unregister) freely.
#
# The send hot path is shaped for MicroPython:
# - ids and names live in two dicts, published together as `_by_class`
#   {int: ids, str: names}: send indexes it with `to.__class__`, then the dict found with
#   `to` (subscripts, the cheapest lookups there are, and no branch), inside the same
#   `try` that calls the handler. Only an exact int reaches the id dict, so True or 1.0
#   never reach module 1. A lookup that fails (KeyError; TypeError for an unhashable
#   `to` on CPython) leaves `h` None, which is how send tells a miss (-> the slow path,
#   which raises the errors) from a handler that raised. For that test to hold, a
#   handler whose type defines __bool__ or __len__ is served by the slow path only
#   (see _fast_ok).
# - Names are interned (made qstrs) at register time. A MicroPython dict whose keys are
#   all qstrs compares probed keys by pointer, and fails at once for a key that is not
#   a str, without hashing it: bools, floats, ModuleAddresses and unhashable objects
#   go to the slow path. (A name too long to intern is served by the slow path only.)
# - MicroPython dicts probe linearly, grow only when full and hash str to 16 bits, so
#   names like "m1".."m999" pile up in long probe runs. The two send dicts are laid
#   out by `_layout` (a table size, load <= 1/2, whose probe runs are short for the
#   keys registered, keys inserted in home-slot order) and rebuilt only when their
#   load leaves 1/8..2/3 (see _Table): geometric growth, so registering stays cheap and
#   makes no big temporaries on small heaps.
# - The frame stays within the 11 words MicroPython keeps on the C stack (past that
#   every call allocates its frame on the heap; host_tests/test_router_alloc.py checks
#   it with micropython.mem_total). send's frame is exactly at that limit: that is why
#   it catches with a bare `except:` whose handler evaluates at most one value
#   (`_caught()` or `_missed()`, which read the exception through sys.exc_info() and
#   re-raise anything that is not an Exception). Ports without sys.exc_info use
#   `_send_portable` (the same, with `except Exception`).

import sys

from ._compat import IS_MICROPYTHON as _MICROPYTHON, const, new_lock
from .errors import AlreadyRegistered, ChannelFull, ModuleNotFound
from .messages import (
    ModuleAddress,
    Request,
    Response,
    Error,
    Id,
    Name,
    _Broadcast,
    check_module_id,
    check_name,
    check_priority,
)

_MASK = const((1 << 29) - 1)  # counters wrap here: they stay small ints on 32-bit boards
DEFAULT_MAILBOX_CAPACITY = const(64)
MAX_MAILBOX_CAPACITY = const(65536)

# Module-level alias: builtins are found by a linear scan on MicroPython.
_isinstance = isinstance
_exc_info = getattr(sys, "exc_info", None)  # type: Any  # None on ports without it

if False:  # names for the type comments only: mypy reads this, MicroPython compiles it away
    from typing import Any  # noqa: F401


class _Caught:
    # What a handler raised, as send's result (never confused with a returned value).
    def __init__(self, exc):
        self.exc = exc


_MISS = _Caught(None)  # send's result when `to` is not in its lookup tables


def _caught():
    # Called inside send's bare `except:`: the exception being handled, wrapped.
    # KeyboardInterrupt, SystemExit and the like are re-raised, never swallowed.
    # (MicroPython keeps sys.exc_info() per VM, not per thread: another thread leaving
    # its own handler may have cleared it, hence the None case.)
    e = _exc_info()[1]
    if e is None:
        e = RuntimeError("the exception was lost (sys.exc_info cleared by another thread)")
    elif not isinstance(e, Exception):
        raise e
    return _Caught(e)


def _missed():
    # Called inside send's bare `except:` when the lookup failed: _MISS (re-raises
    # anything that is not an Exception, as _caught does). Under micropython.heap_lock
    # sys.exc_info() cannot build its tuple: the lookup's exception is then taken to
    # be the lookup's own (a ModuleAddress, say), so sends by address work there too.
    try:
        e = _exc_info()[1]
    except MemoryError:
        return _MISS
    if e is not None and not isinstance(e, Exception):
        raise e
    return _MISS


def _fast_ok(handler):
    # Whether send may keep `handler` in its lookup tables: send relies on a found
    # handler being true (see the header), so types that may be false are excluded.
    t = type(handler)
    return not (hasattr(t, "__bool__") or hasattr(t, "__len__"))


class _NoLock:
    # Stands in for a lock on builds without threads.
    def acquire(self):
        return True

    def release(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        pass


def _check_capacity(capacity):
    if capacity.__class__ is not int:
        raise TypeError("mailbox_capacity must be an int, got %s" % type(capacity).__name__)
    if capacity < 1 or capacity > MAX_MAILBOX_CAPACITY:
        raise ValueError("mailbox_capacity must be 1..%d, got %d" % (MAX_MAILBOX_CAPACITY, capacity))
    return capacity


class _Scratch:
    pass


def _intern(name):
    # MicroPython: the interned (qstr) twin of `name`, read back from an instance
    # attribute table; None if the port cannot intern it (too long, no __dict__).
    o = _Scratch()
    try:
        setattr(o, name, None)
        for key in o.__dict__:
            return key
    except (RuntimeError, AttributeError):
        pass
    return None


class _Sized:
    # Iterates `keys` but reports len() == size: MicroPython's dict.fromkeys allocates
    # exactly len() slots up front, then inserts the keys in this order.
    def __init__(self, keys, size):
        self.keys = keys
        self.size = size

    def __len__(self):
        return self.size

    def __iter__(self):
        return iter(self.keys)


def _probes(homes):
    # Extra probes, in total, of a linear-probing table filled in `homes` (sorted) order
    # (the total is the same for any insertion order).
    total = 0
    nxt = 0
    for h in homes:
        if h < nxt:
            total += nxt - h
            nxt += 1
        else:
            nxt = h + 1
    return total


def _layout(src, n):
    # MicroPython: a copy of dict `src` (n keys) at a table size whose probe runs are
    # short for these keys, and that size. Sizes from 2n+1 up are tried (at most 6) on
    # one scratch list of home slots; the keys go in in home-slot order, which keeps the
    # longest probe run short. Called only when a table leaves its load band.
    keys = list(src)
    hashes = [hash(k) for k in keys]
    homes = hashes[:]  # the scratch list, refilled for each size tried
    size = best_size = 2 * n + 1
    best = -1
    for _ in range(6):
        i = 0
        for h in hashes:
            homes[i] = h % size
            i += 1
        homes.sort()
        cost = _probes(homes)
        if best < 0 or cost < best:
            best, best_size = cost, size
        if cost * 4 <= n:  # under 1/4 extra probe per key on average: good enough
            break
        size = (size + n // 3 + 2) | 1
    # home-slot order without a key function: sort home * n + index, then decode
    i = 0
    for h in hashes:
        homes[i] = (h % best_size) * n + i
        i += 1
    homes.sort()
    i = 0
    for code in homes:
        homes[i] = keys[code % n]
        i += 1
    d = dict.fromkeys(_Sized(homes, best_size))
    d.update(src)
    return d, best_size


class _Table:
    # One copy-on-write lookup dict: `d` is never changed once published (lock-free
    # readers keep using the dict they read); add/remove return a changed copy, made
    # with dict.copy() (one allocation, same layout, C speed) and the key added or
    # deleted in place. Only when the load leaves its band is the dict rebuilt, so the
    # cost of registering is amortised and no big temporaries are made per call.
    # `spread` (MicroPython, the send tables): laid out by _layout at load <= 1/2, rebuilt
    # once keys plus deleted slots reach 2/3 of the table or keys fall below 1/8.
    # Otherwise (the slow-path tables) the dict grows by itself when full, and is
    # compacted once deleted slots outnumber the keys. Used with the router's lock held.

    def __init__(self, spread):
        self.d = {}
        self.size = 0  # table size chosen by _layout (spread tables)
        self.dead = 0  # deletions since the last rebuild: an upper bound of deleted slots
        self.spread = spread

    def add(self, key, value):
        d = self.d
        n = len(d) + 1
        d = d.copy()
        d[key] = value
        if self.spread and 3 * (n + self.dead) >= 2 * self.size:
            d, self.size = _layout(d, n)
            self.dead = 0
        self.d = d
        return d

    def remove(self, key):
        d = self.d.copy()
        del d[key]
        self.dead += 1
        n = len(d)
        if self.spread:
            if 3 * (n + self.dead) >= 2 * self.size or 8 * n < self.size:
                if n:
                    d, self.size = _layout(d, n)
                else:
                    d, self.size = {}, 0
                self.dead = 0
        elif self.dead > n + 8:
            d = dict(d)  # reinserted: no deleted slots
            self.dead = 0
        self.d = d
        return d


def _describe(to):
    if isinstance(to, ModuleAddress):
        return repr(to)
    if to.__class__ is int:
        return "id %d" % to
    return "name %r" % (to,)


class _Mailbox:
    # One FIFO ring per MessagePriority, each a list of (request, callback) slot pairs
    # able to hold the whole mailbox, created the first time its priority is used and
    # reused from then on. Guarded by the router's lock.

    def __init__(self, capacity):
        self.capacity = capacity
        self.count = 0
        self.rings = [None, None, None, None]  # type: list[Any]  # a list per used priority
        self.heads = [0, 0, 0, 0]
        self.lens = [0, 0, 0, 0]
        self.callback = None  # the callback of the request pop() returned last

    def push(self, priority, request, callback):
        ring = self.rings[priority]
        if ring is None:
            ring = self.rings[priority] = [None] * (2 * self.capacity)
        i = self.heads[priority] + self.lens[priority]
        if i >= self.capacity:
            i -= self.capacity
        i += i
        ring[i] = request
        ring[i + 1] = callback
        self.lens[priority] += 1
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
        ring[i] = ring[i + 1] = None
        h += 1
        self.heads[p] = 0 if h == self.capacity else h
        lens[p] -= 1
        self.count -= 1
        return request

    def take_all(self):
        # Everything queued, in delivery order, as [(request, callback)]; empties the box.
        out = []
        while self.count:
            request = self.pop()
            out.append((request, self.callback))
        self.callback = None
        return out


class _Module:
    # One registration: what the slow paths, mailboxes and broadcast need.
    # False (set per instance) when send finds the module on the slow path only:
    fast = True  # its id and name (the handler may be false, see _fast_ok)
    hot = True  # its name (not interned, or not fast)

    def __init__(self, module_id, name, handler, capacity):
        self.id = module_id
        self.name = name
        self.handler = handler
        self.capacity = capacity
        self.mailbox = None  # created by the first queue()
        self.alive = True

    def label(self):
        return "module %r (id %d)" % (self.name, self.id)


class MessageRouter:
    """Routes requests to registered modules, by id (int >= 0) or name (str).

    `send` calls the module's handler now; `queue` puts the request in the module's
    bounded mailbox (highest priority first, FIFO within a priority) for a later
    `process_mailbox`. A handler that raises or returns something other than a
    Response yields `Response.Error` naming the module and the cause.

    Counters (wrapping at 2**29): `messages_routed` (requests handed to a handler),
    `handler_errors` (of those, how many raised or returned a non-Response),
    `messages_refused` (queue() calls refused because the mailbox was full) and
    `callback_errors` (response callbacks that raised; the exception is dropped) and
    `messages_discarded` (queued requests without a callback that unregister dropped).
    """

    def __init__(self, mailbox_capacity=DEFAULT_MAILBOX_CAPACITY):
        self._default_capacity = _check_capacity(mailbox_capacity)
        self._lock = new_lock() or _NoLock()
        # Copy-on-write: module id -> _Module, module name -> _Module, and send's
        # {int: {module id: handler}, str: {module name: handler}}.
        self._modules = {}
        self._by_name = {}
        self._by_class = {int: {}, str: {}}  # type: dict[Any, dict[Any, Any]]
        # their tables (the dicts above are the tables' current `d`)
        self._tables = (_Table(False), _Table(False), _Table(_MICROPYTHON), _Table(_MICROPYTHON))
        self.messages_routed = 0
        self.handler_errors = 0
        self.messages_refused = 0
        self.callback_errors = 0
        self.messages_discarded = 0

    # -- registry ------------------------------------------------------------------

    def register(self, module_id, name, handler, mailbox_capacity=None):
        """Register `handler(request) -> Response` under `module_id` and `name`.
        `mailbox_capacity` (default: the router's, 64) bounds the module's mailbox.
        Raises AlreadyRegistered when the id or the name is taken. On MicroPython the
        name is interned (kept as a qstr for the life of the program)."""
        check_module_id(module_id)
        check_name(name)
        if not callable(handler):
            raise TypeError("handler must be callable, got %s" % type(handler).__name__)
        if mailbox_capacity is None:
            capacity = self._default_capacity
        else:
            capacity = _check_capacity(mailbox_capacity)
        fast = _fast_ok(handler)
        hot = fast
        if _MICROPYTHON:
            interned = _intern(name)
            if interned is None:
                hot = False
            else:
                name = interned
        m = _Module(module_id, name, handler, capacity)
        if not fast:
            m.fast = False
        if not hot:
            m.hot = False
        with self._lock:
            by_id = self._modules.get(module_id)
            by_name = self._by_name.get(name)
            if by_id is not None or by_name is not None:
                raise AlreadyRegistered(_taken(module_id, name, by_id, by_name))
            t_id, t_name, t_ids, t_names = self._tables
            # the slow-path tables first, send's tables last: send sees a complete module
            self._modules = t_id.add(module_id, m)
            self._by_name = t_name.add(name, m)
            if fast:
                self._by_class = {
                    int: t_ids.add(module_id, handler),
                    str: t_names.add(name, handler) if hot else t_names.d,
                }

    def unregister(self, module_id):
        """Remove the module; False if no module has that id. Every request still
        waiting in its mailbox with a callback is answered with Response.Error."""
        check_module_id(module_id)
        with self._lock:
            m = self._modules.get(module_id)
            if m is None:
                return False
            t_id, t_name, t_ids, t_names = self._tables
            # send's tables first, then the slow-path tables
            if m.fast:
                self._by_class = {
                    int: t_ids.remove(module_id),
                    str: t_names.remove(m.name) if m.hot else t_names.d,
                }
            self._by_name = t_name.remove(m.name)
            self._modules = t_id.remove(module_id)
            m.alive = False
            pending = m.mailbox.take_all() if m.mailbox is not None else None
            m.mailbox = None
        if pending:
            for request, callback in pending:
                if callback is None:
                    self.messages_discarded = (self.messages_discarded + 1) & _MASK
                else:
                    self._answer(
                        callback,
                        Error(
                            "%s was unregistered before handling request %d (%r)"
                            % (m.label(), request.id, request.request_type)
                        ),
                    )
        return True

    def module_count(self):
        """How many modules are registered."""
        return len(self._modules)

    def is_registered(self, module_id):
        """True if a module is registered under this id (or name, or ModuleAddress)."""
        try:
            self._module(module_id, "is_registered")
        except ModuleNotFound:
            return False
        return True

    def get_module_id(self, name):
        """The id registered under `name`, or None."""
        check_name(name)
        m = self._by_name.get(name)
        return None if m is None else m.id

    # -- request/response ---------------------------------------------------------

    def _send_fast(self, to, request):
        """Call the module's handler with `request` now and return its Response.
        `to` is a module id (int), a name (str) or a ModuleAddress.Id/Name.
        Raises ModuleNotFound, TypeError for a `to` of another type, or ValueError for
        ModuleAddress.BROADCAST."""
        h = None
        try:
            h = self._by_class[to.__class__][to]
            self.messages_routed = (self.messages_routed + 1) & _MASK
            h = h(request)
        except:  # noqa: E722 - see the header: both helpers re-raise non-Exceptions
            h = _caught() if h else _missed()  # h is still None if the lookup failed
        if _isinstance(h, Response):
            return h
        if h is _MISS:
            return self._send_slow(to, request)
        return self._failed(to, h)

    def _send_portable(self, to, request):
        # `send` for ports without sys.exc_info (its frame lives on the heap there).
        h = None
        try:
            h = self._by_class[to.__class__][to]
            self.messages_routed = (self.messages_routed + 1) & _MASK
            h = h(request)
        except Exception as e:
            h = _Caught(e) if h else _MISS
        if _isinstance(h, Response):
            return h
        if h is _MISS:
            return self._send_slow(to, request)
        return self._failed(to, h)

    def _send_slow(self, to, request):
        # Not a plain registered id or name: a ModuleAddress, an unknown module, bad input.
        return self._deliver(self._module(to, "send", "to"), request)

    def _failed(self, to, h):
        # The handler raised (h is a _Caught) or returned a non-Response.
        m = self._find(to)
        who = m.label() if m is not None else "module %s" % _describe(to)
        return self._bad_result(who, h)

    def _bad_result(self, who, h):
        self.handler_errors = (self.handler_errors + 1) & _MASK
        if h.__class__ is _Caught:
            e = h.exc
            return Error("%s: handler raised %s: %s" % (who, type(e).__name__, e))
        return Error("%s: handler returned %s, not a Response" % (who, type(h).__name__))

    def _deliver_fast(self, m, request):
        # Call m's handler; the result is always a Response (mailboxes, broadcast, slow send).
        self.messages_routed = (self.messages_routed + 1) & _MASK
        h = m.handler
        try:
            h = h(request)
        except:  # noqa: E722 - as in send
            h = _caught()
        if _isinstance(h, Response):
            return h
        return self._bad_result(m.label(), h)

    def _deliver_portable(self, m, request):
        # `_deliver` for ports without sys.exc_info.
        self.messages_routed = (self.messages_routed + 1) & _MASK
        h = m.handler
        try:
            h = h(request)
        except Exception as e:
            h = _Caught(e)
        if _isinstance(h, Response):
            return h
        return self._bad_result(m.label(), h)

    # The fast versions need sys.exc_info (see the header); other ports use the portable ones.
    send = _send_fast if _exc_info is not None else _send_portable
    _deliver = _deliver_fast if _exc_info is not None else _deliver_portable

    def broadcast(self, request):
        """Send `request` to every registered module except its sender, in ascending
        module id order; returns [(module_id, Response)]. Modules registered while the
        broadcast runs are not included; modules unregistered meanwhile are skipped."""
        if not isinstance(request, Request):
            raise TypeError("request must be a Request, got %s" % type(request).__name__)
        sender = request.sender
        skip_id = sender.value if sender.__class__ is Id else None
        skip_name = sender.value if sender.__class__ is Name else None
        modules = self._modules  # a snapshot: the registry is copy-on-write
        out = []
        for module_id in sorted(modules):
            m = modules[module_id]
            if module_id == skip_id or m.name == skip_name or not m.alive:
                continue
            out.append((module_id, self._deliver(m, request)))
        return out

    # -- mailboxes ----------------------------------------------------------------

    def queue(self, to, request, callback=None):
        """Put `request` in the module's mailbox for a later process_mailbox;
        `callback(response)` is called exactly once with the outcome (the handler's
        response, or Response.Error if the module is unregistered first).
        Raises ChannelFull when the mailbox is full, ModuleNotFound for no such module."""
        m = self._module(to, "queue", "to")
        if not isinstance(request, Request):
            raise TypeError("request must be a Request, got %s" % type(request).__name__)
        if callback is not None and not callable(callback):
            raise TypeError("callback must be callable or None, got %s" % type(callback).__name__)
        check_priority(request.priority)
        self._lock.acquire()
        mb = m.mailbox
        if mb is None:
            if not m.alive:
                self._lock.release()
                raise ModuleNotFound("queue: %s was unregistered" % m.label())
            mb = m.mailbox = _Mailbox(m.capacity)
        if mb.count >= mb.capacity:
            self.messages_refused = (self.messages_refused + 1) & _MASK
            self._lock.release()
            raise ChannelFull("queue: the mailbox of %s is full (%d requests)" % (m.label(), mb.capacity))
        mb.push(request.priority, request, callback)
        self._lock.release()

    def process_mailbox(self, module_id, max_count):
        """Deliver up to `max_count` queued requests to the module, highest priority
        first and FIFO within a priority, calling each one's callback with the
        response; returns how many were delivered."""
        m = self._module(module_id, "process_mailbox")
        if max_count.__class__ is not int:
            raise TypeError("max_count must be an int, got %s" % type(max_count).__name__)
        if max_count < 0:
            raise ValueError("max_count must be >= 0, got %d" % max_count)
        done = 0
        while done < max_count and self._process_one(m):
            done += 1
        return done

    def _process_one(self, m):
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
        response = self._deliver(m, request)
        if callback is not None:
            self._answer(callback, response)
        return True

    def _answer(self, callback, response):
        try:
            callback(response)
        except Exception:
            self.callback_errors = (self.callback_errors + 1) & _MASK

    def mailbox_size(self, module_id):
        """How many requests wait in the module's mailbox."""
        mb = self._module(module_id, "mailbox_size").mailbox
        return 0 if mb is None else mb.count

    def mailbox_capacity(self, module_id):
        """How many requests the module's mailbox holds at most."""
        return self._module(module_id, "mailbox_capacity").capacity

    # -- lookups ------------------------------------------------------------------

    def _module(self, to, what, arg="module_id"):
        # The _Module for an id, a name or a ModuleAddress; raises on anything else.
        # `what` and `arg` (the caller's name and its argument's) go in the messages.
        cls = to.__class__
        if cls is int:
            if to < 0:
                raise ValueError("%s: module_id must be >= 0, got %d" % (what, to))
            m = self._modules.get(to)
        elif cls is str:
            if not to:
                raise ValueError("%s: module name must not be empty" % what)
            m = self._by_name.get(to)
        elif isinstance(to, ModuleAddress):
            if cls is _Broadcast:
                raise ValueError(
                    "%s: ModuleAddress.BROADCAST is not one module; use broadcast(request)" % what
                )
            m = (self._modules if cls is Id else self._by_name).get(to.value)
        else:
            raise TypeError(
                "%s: %s must be a module id (int), a name (str) or a ModuleAddress, got %s"
                % (what, arg, type(to).__name__)
            )
        if m is None:
            raise ModuleNotFound("%s: no module registered under %s" % (what, _describe(to)))
        return m

    def _find(self, to):
        # Like _module, but None instead of raising.
        try:
            return self._module(to, "")
        except (ModuleNotFound, ValueError, TypeError):
            return None


def _taken(module_id, name, by_id, by_name):
    if by_id is not None and by_id is by_name:
        return "module id %d and name %r are already registered" % (module_id, name)
    parts = []
    if by_id is not None:
        parts.append("module id %d is already registered (as %r)" % (module_id, by_id.name))
    if by_name is not None:
        parts.append("module name %r is already registered (as id %d)" % (name, by_name.id))
    return "; ".join(parts)


# -- the global router -------------------------------------------------------------

_global = [None]  # type: list[MessageRouter | None]
_global_lock = new_lock() or _NoLock()  # a lock object only: no hardware, nothing started


def global_router():
    """The process-wide MessageRouter (created on first use)."""
    r = _global[0]
    if r is None:
        with _global_lock:
            r = _global[0]
            if r is None:
                r = _global[0] = MessageRouter()
    return r


def send_request(to, request):
    """global_router().send(to, request)."""
    return global_router().send(to, request)


def send_to(name, request):
    """global_router().send(name, request) for a module name (str)."""
    check_name(name)
    return global_router().send(name, request)
