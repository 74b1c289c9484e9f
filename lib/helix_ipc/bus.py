# helix_ipc.bus: the publish/subscribe event bus.
#
# Contexts:
# - `publish` runs in task context: the main loop, a scheduled callback, or ONE thread at
#   a time per bus. Never from a hard IRQ: post with `publish_from_isr` (helix_ipc.isr).
# - `subscribe`, `unsubscribe`, `pause`, `resume` and `EventSubscription.pause/resume/
#   with_priority` may be called from any thread and from inside a handler; they take the
#   bus lock (where threads exist). Changes apply from the next publish.
#
# Design:
# - `_index` maps a topic key (EventTopic._key) to the topic's entry, a tuple
#   (handlers, ok, subscriptions, own): `handlers` are the active subscriptions' handlers of
#   the topic merged with the active EventTopic.ALL ones, in delivery order (priority, then
#   subscription order), `subscriptions` the parallel tuple of their subscriptions, `ok`
#   the shared result "len(handlers) handled", `own` the topic's own subscriptions, paused
#   ones included. `_alls` is the entry for topics nobody named; `_all` the ALL subscriptions.
# - A change builds the new entries of the topics it touches (every topic for an ALL
#   subscription), then stores them: a dispatch in progress keeps the entry it started
#   with. The only store that can allocate (a new topic's first entry) is made first with
#   a value meaning "absent" and undone on MemoryError, so a call that raises MemoryError
#   leaves the bus as it was. No block is ever as large as the whole registry.
# - `publish` is native (`@micropython.native`): its frame lives on the C stack, so the
#   per-handler `try/except Exception as e` costs no heap frame on a board, where there is
#   no sys.exc_info. One dict lookup, then each handler is called and its outcome
#   classified; when every handler returned None/HANDLED the topic's `ok` record is
#   returned, otherwise the record of the nesting depth is filled (made once, the first
#   time that depth needs one). Either is reused: read it before the next publish. Native
#   code looks a builtin up in two dicts (module, then builtins): isinstance is aliased
#   as a module global.
# - A handler that raises, returns EventResponse.Error(...) or anything that is not an
#   EventResponse/None counts in the result's `errors` and in `handler_errors`, and goes to
#   `error_hook("subscription 'name'", error)` (None: one line on stderr). The other
#   handlers still run. KeyboardInterrupt/SystemExit propagate; the bus stays usable.
# - A handler may publish: the nested publish is delivered completely first. A publish
#   nested deeper than MAX_DEPTH raises NestingTooDeep and counts in `events_dropped`,
#   as does every publish while the bus is paused.
# Counters wrap at 2**29 so they stay small ints on 32-bit boards.

import sys

from ._compat import const, micropython, new_lock
from ._record import Record
from .errors import InternalError, check_int
from .events import Event, EventResponse, EventTopic, _check_name
from .isr import IsrQueue

MAX_DEPTH = const(8)  # publishes nested inside handlers; one more raises NestingTooDeep
_MASK = const((1 << 29) - 1)

_HANDLED = EventResponse.HANDLED
_IGNORED = EventResponse.IGNORED
_DEFERRED = EventResponse.DEFERRED

_isinstance = isinstance  # a module global: one dict probe in native code, not two
_FIELDS = ("handled", "ignored", "deferred", "errors")

_next_id = [1]  # subscription ids are unique in the process

if False:  # names for the type comments only: mypy reads this, MicroPython compiles it away
    from typing import Any  # noqa: F401


class NestingTooDeep(InternalError):
    """A handler published while MAX_DEPTH publishes were already nested (a runaway chain)."""


class EventDispatchResult(Record):
    """What one publish did: `handled`, `ignored`, `deferred`, `errors`.
    The bus reuses the record: read it before the next publish, copy() it to keep it."""

    handled: int
    ignored: int
    deferred: int
    errors: int

    def __init__(self, handled=0, ignored=0, deferred=0, errors=0):
        Record.__init__(self, _FIELDS, (handled, ignored, deferred, errors))

    def copy(self):
        """A detached copy, safe to keep across publishes."""
        return EventDispatchResult(self.handled, self.ignored, self.deferred, self.errors)


def print_error(where, error):
    """The default error hook: one line on stderr."""
    if isinstance(error, BaseException):
        error = "%s: %s" % (type(error).__name__, error)
    else:
        error = "returned %r" % (error,)
    print("helix_ipc: %s: %s" % (where, error), file=sys.stderr)


class EventSubscription:
    """A named handler for one or more topics: EventSubscription(name, topics, handler).

    `handler(event)` returns None/EventResponse.HANDLED, IGNORED, DEFERRED or
    EventResponse.Error(message). `id` is unique in the process and fixed at creation."""

    priority = 128  # SubscriptionPriority.NORMAL; an instance stores only what differs
    _active = True

    def __init__(self, name, topics, handler):
        _check_name(name, "name")
        if isinstance(topics, EventTopic):
            topics = (topics,)
        elif not isinstance(topics, (list, tuple)):
            raise TypeError("topics must be a list of EventTopic, got %s" % type(topics).__name__)
        if not topics:
            raise ValueError("topics must not be empty")
        out = []
        for t in topics:
            if not isinstance(t, EventTopic):
                raise TypeError("topics must hold EventTopic values, got %s" % type(t).__name__)
            if t not in out:
                out.append(t)
        if not callable(handler):
            raise TypeError("handler must be callable, got %s" % type(handler).__name__)
        self.name = name
        self.topics = tuple(out)
        self.handler = handler
        self.id = _next_id[0]
        _next_id[0] += 1
        # set here, so that subscribe() only replaces them (a new attribute may allocate)
        self._bus = None  # type: EventBus | None
        self._seq = 0  # subscription order on its bus

    def with_priority(self, priority):
        """Set the priority (0..255, lower runs first) and return the subscription."""
        check_int(priority, "priority", 0, 255)
        self._set("priority", priority, 1)
        return self

    def pause(self):
        """Stop delivering to this subscription (from the next publish) until resume()."""
        self._set("_active", False, 0)

    def resume(self):
        """Deliver again from the next publish."""
        self._set("_active", True, 0)

    def _set(self, name, value, mode):
        # Set the attribute, then have the bus rebuild its entries; undone on MemoryError.
        old = getattr(self, name)
        if old != value:
            setattr(self, name, value)
            bus = self._bus
            if bus is not None:
                try:
                    bus._update(self, mode)
                except MemoryError:
                    setattr(self, name, old)
                    raise

    @property
    def is_active(self):
        """False while paused."""
        return self._active

    def __repr__(self):
        return "EventSubscription(%r, id=%d, priority=%d%s)" % (
            self.name, self.id, self.priority, "" if self._active else ", paused")


def _before(a, b):
    # True when subscription a is delivered before b.
    return a.priority < b.priority or (a.priority == b.priority and a._seq < b._seq)


def _placed(subs, sub, insert):
    # subs without sub, then (insert) with sub at its place in delivery order: a new tuple.
    out = []
    for s in subs:
        if s is not sub:
            out.append(s)
    if insert:
        i = len(out)
        while i and _before(sub, out[i - 1]):
            i -= 1
        out.insert(i, sub)
    return tuple(out)


def _entry(own, alls):
    # A topic's entry (handlers, ok, subscriptions, own): see the module header.
    active = []
    i = j = 0
    while i < len(own) or j < len(alls):
        if j == len(alls) or (i < len(own) and _before(own[i], alls[j])):
            s = own[i]
            i += 1
        else:
            s = alls[j]
            j += 1
        if s._active:
            active.append(s)
    handlers = []
    for s in active:
        handlers.append(s.handler)
    subs = tuple(active)
    return (tuple(handlers), _ok(len(subs)), own if subs == own else subs, own)


_oks = []  # type: list[EventDispatchResult]  # _oks[n]: "n handled", shared by every topic


def _ok(n):
    while len(_oks) <= n:
        _oks.append(EventDispatchResult(len(_oks)))
    return _oks[n]


class EventBus:
    """Publish/subscribe by topic; see the module header for contexts and guarantees.

    Counters: `events_dispatched` (publishes delivered), `events_dropped` (not delivered:
    bus paused, or nesting limit hit), `handler_errors` (handlers that raised or returned
    an error or a non-response). `error_hook(where, error)` receives each failure (None:
    one line on stderr). IRQ layer: `publish_from_isr(kind, a=0, b=0) -> bool` (hard-IRQ
    safe), `poll() -> int`, `isr_stats()`; `isr_capacity` sizes its ring (default: the
    board profile's)."""

    def __init__(self, isr_capacity=None):
        if isr_capacity is None:
            from .board import get

            isr_capacity = get("isr_capacity")
        self.events_dispatched = 0
        self.events_dropped = 0
        self.handler_errors = 0
        self.error_hook = None
        self._count = 0  # subscriptions (no dict by id: its table would be one block as big as the registry)
        self._index = {}  # type: dict[int | str, tuple]  # topic key -> entry
        self._all = ()  # type: tuple[EventSubscription, ...]
        self._alls = _entry((), ())
        self._seq = 0
        self._paused = False
        self._depth = 0
        self._results = [None] * (MAX_DEPTH + 1)  # type: list  # per nesting depth, made on first use
        self._lock = new_lock()
        # the IRQ ring exists before any IRQ can post; its entry points are bound once
        # here (taking a bound method in an IRQ would allocate)
        isr = self._isr = IsrQueue(isr_capacity, self.publish, report=self._hook)
        self.publish_from_isr = isr.post
        self.poll = isr.poll

    def isr_stats(self):
        """The IRQ ring's counters: posted, delivered, dropped, schedule_failures,
        high_water, errors, capacity."""
        return self._isr.stats()

    @micropython.native
    def publish(self, event):
        """Deliver `event` to every matching active subscription, in priority order.
        Returns an EventDispatchResult (reused: read it before the next publish)."""
        d = self._depth
        if d > MAX_DEPTH or self._paused or not _isinstance(event, Event):
            return self._refuse(event)
        t = self._index.get(event._topic_key, self._alls)
        self._depth = d + 1
        i = 0
        ignored = 0
        deferred = 0
        errors = 0
        for h in t[0]:
            try:
                r = h(event)
            except Exception as e:
                r = e
            except BaseException as e:  # KeyboardInterrupt, SystemExit: propagate
                self._depth = d
                raise e  # a bare raise is not supported in native code
            if r is not None and r is not _HANDLED:
                if r is _IGNORED:
                    ignored += 1
                elif r is _DEFERRED:
                    deferred += 1
                else:
                    errors += 1
                    self._report("subscription %r" % t[2][i].name, r)
            i += 1
        self._depth = d
        self.events_dispatched = (self.events_dispatched + 1) & _MASK
        if ignored or deferred or errors:
            res = self._results[d]
            if res is None:
                res = self._results[d] = EventDispatchResult()
            res.handled = i - ignored - deferred - errors
            res.ignored = ignored
            res.deferred = deferred
            res.errors = errors
            return res
        return t[1]

    def _refuse(self, event):
        # publish's rare cases: a bad event, the nesting limit, a paused bus.
        if not isinstance(event, Event):
            raise TypeError("event must be an Event instance, got %r" % (event,))
        self.events_dropped = (self.events_dropped + 1) & _MASK
        d = self._depth
        if d > MAX_DEPTH:
            raise NestingTooDeep("publish nested %d deep inside handlers (limit %d): runaway event chain?"
                                 % (d, MAX_DEPTH))
        return _ok(0)

    def _report(self, where, error):
        # A handler failed: counted, then passed to the hook.
        self.handler_errors = (self.handler_errors + 1) & _MASK
        self._hook(where, error)

    def _hook(self, where, error):
        # error_hook(where, error), or the default; a hook that raises is printed too.
        hook = self.error_hook
        if hook is not None:
            try:
                hook(where, error)
                return
            except Exception as e:
                where = "error_hook"
                error = e
        print_error(where, error)

    # -- subscriptions -----------------------------------------------------------------
    def subscribe(self, subscription):
        """Add a subscription; returns its id. It receives events from the next publish."""
        if not isinstance(subscription, EventSubscription):
            raise TypeError("subscription must be an EventSubscription, got %s"
                            % type(subscription).__name__)
        self._update(subscription, 2)
        return subscription.id

    def unsubscribe(self, subscription_id):
        """Remove a subscription by id (from the next publish). False if unknown."""
        check_int(subscription_id, "subscription_id")
        return self._update(subscription_id, 3)

    def _update(self, sub, mode):
        # mode 0: sub paused/resumed, 1: its priority changed, 2: subscribe, 3: unsubscribe
        # (sub is then an id). Under the lock, builds every new entry first, then stores them.
        lock = self._lock
        if lock:
            lock.acquire()
        try:
            return self._change(sub, mode)
        finally:
            if lock:
                lock.release()

    def _change(self, sub, mode):
        if mode == 3:
            sub = self._find(sub)
            if sub is None:
                return False
        if mode == 2:
            if sub._bus is not None:
                raise ValueError("subscription %r is already subscribed" % sub.name)
            sub._seq = self._seq + 1
        elif sub._bus is not self:
            return False
        index = self._index
        alls = self._all
        plan = None  # type: Any  # (key, new entry or None, next): a chain of small tuples
        keys = ()
        if EventTopic.ALL in sub.topics:
            if mode:
                alls = _placed(alls, sub, mode < 3)
            for k in index:
                plan = (k, _entry(index[k][3], alls), plan)
        else:
            keys = sub.topics
            for t in keys:
                own = index.get(t._key, self._alls)[3]
                if mode:
                    own = _placed(own, sub, mode < 3)
                plan = (t._key, _entry(own, alls) if own else None, plan)
        fallback = _entry((), alls)
        try:
            for t in keys:  # room for new topics, holding the value that means "absent"
                if t._key not in index:
                    index[t._key] = self._alls
        except MemoryError:
            for t in keys:
                if index.get(t._key) is self._alls:
                    del index[t._key]
            raise
        # nothing below allocates
        while plan is not None:
            k, e, plan = plan
            if e is None:
                del index[k]
            else:
                index[k] = e
        self._all = alls
        self._alls = fallback
        if mode == 2:
            self._seq += 1
            self._count += 1
            sub._bus = self
        elif mode == 3:
            self._count -= 1
            sub._bus = None
        return True

    def _find(self, subscription_id):
        # The subscription with that id, or None: a scan (unsubscribe is rare).
        for s in self._all:
            if s.id == subscription_id:
                return s
        for e in self._index.values():
            for s in e[3]:
                if s.id == subscription_id:
                    return s
        return None

    def pump(self):
        """`await bus.pump()`: delivers IRQ posts as they arrive, until cancelled (helix_ipc.aio)."""
        from .aio import pump
        return pump(self)

    def stream(self, topics, capacity=16):
        """An EventStream: a subscription whose events queue for a task (helix_ipc.aio)."""
        from .aio import EventStream
        return EventStream(self, topics, capacity)

    def subscription_count(self):
        """Number of subscriptions, paused ones included."""
        return self._count

    def subscriptions(self):
        """Every subscription, in subscription order (a new list: for inspection)."""
        found = {}
        for s in self._all:
            found[s._seq] = s
        for e in list(self._index.values()):
            for s in e[3]:
                found[s._seq] = s
        return [found[k] for k in sorted(found)]

    def subscriptions_by_topic(self):
        """{topic name: [subscription names in subscription order]} ("(paused)" marked):
        what the REPL's status shows."""
        out = {}  # type: dict[str, list[str]]
        for s in self.subscriptions():
            for t in s.topics:
                out.setdefault(t.name, []).append(s.name if s._active else s.name + " (paused)")
        return out

    # -- bus state ---------------------------------------------------------------------
    def pause(self):
        """Deliver nothing until resume(); each publish meanwhile counts in events_dropped."""
        self._paused = True

    def resume(self):
        """Deliver again from the next publish."""
        self._paused = False

    def is_active(self):
        """False while paused."""
        return not self._paused


# -- the global bus ----------------------------------------------------------------

_global = [None]  # type: list[EventBus | None]


def global_event_bus():
    """The process-wide EventBus, created on first use."""
    bus = _global[0]
    if bus is None:
        bus = _global[0] = EventBus()
    return bus


def subscribe(subscription):
    """global_event_bus().subscribe(subscription)"""
    return global_event_bus().subscribe(subscription)


def unsubscribe(subscription_id):
    """global_event_bus().unsubscribe(subscription_id)"""
    return global_event_bus().unsubscribe(subscription_id)


def publish_event(event):
    """global_event_bus().publish(event)"""
    return global_event_bus().publish(event)
