# helix_ipc.bus: the publish/subscribe event bus.
#
# Contexts:
# - `publish` runs in task context: the main loop, a scheduler callback or ONE thread at
#   a time per bus (a second thread publishing concurrently would be taken for a nested
#   publish; serialise publishers yourself, or post from IRQs/threads with
#   `publish_from_isr` and let the bus drain in one place). Never call it from a hard IRQ.
# - `subscribe`, `unsubscribe`, `pause`, `resume` and `EventSubscription.pause/resume/
#   with_priority` may be called from any thread and from inside a handler; they take a
#   lock (where threads exist) and rebuild the index copy-on-write.
#
# Design (see BENCH.md for the goals):
# - Subscriptions are indexed by topic at subscribe time: `_index` maps an event's `_key`
#   to a prebuilt result record holding the tuple of handlers of that topic, with the
#   EventTopic.ALL subscribers merged in, ordered by (priority, subscription order), paused
#   ones left out. `_fallback` holds the ALL-only tuple for topics nobody subscribed to.
#   A publish costs one dict lookup plus the matching handlers, whatever the total.
# - Tuples are immutable and rebuilt on every change, so a dispatch in progress keeps
#   the tuple it started with: changes apply from the next publish.
# - Publishing allocates nothing. When every handler returns None/HANDLED (the fast path)
#   publish returns the topic's prebuilt record (handled = number of handlers). Any other
#   outcome leaves the fast loop for a slow path that counts into a record kept per
#   nesting depth and resumes after the handler that left it. A result is therefore
#   reused: read it before the next publish, `copy()` it to keep it.
# - The fast loop keeps its frame within MicroPython's 11-word on-stack limit (a bigger
#   frame is heap-allocated and freed on every call): two locals, the loop variable and
#   the last return value live on `self`, calls go through prebound attributes. The try
#   around the loop gets the exception object from sys.exc_info() where the build has it
#   (unix port, CPython); elsewhere an `except ... as e` variant is used, whose frame
#   does not fit and costs a transient heap allocation per publish.
# - A handler that raises, returns EventResponse.Error(...) or returns anything that is
#   not an EventResponse/None counts in `errors` and is reported to `bus.error_hook`
#   (default: one line on stderr naming the subscription). The other handlers still run.
#   KeyboardInterrupt/SystemExit are not caught: they propagate and the bus is left usable.
# - A handler may publish: the nested publish is delivered completely before the outer
#   one continues. Nesting deeper than MAX_DEPTH raises NestingTooDeep (an InternalError)
#   at the publish that went too deep and counts the event in `events_dropped`.
# - A paused bus delivers nothing: each publish returns an all-zero result and counts in
#   `events_dropped`. Pausing swaps in an empty index, so the fast path never checks.

import sys

from ._compat import const, new_lock
from ._record import Record
from .errors import InternalError, check_int
from .events import (
    Event,
    EventResponse,
    EventTopic,
    SubscriptionPriority,
    _check_name,
)

MAX_DEPTH = const(8)  # publishes nested inside handlers; one more raises NestingTooDeep

_HANDLED = EventResponse.HANDLED
_IGNORED = EventResponse.IGNORED
_DEFERRED = EventResponse.DEFERRED
_ErrorResponse = EventResponse.Error
_PAUSED = object()  # returned by the marker handler of a paused bus
_REBUILD = object()  # returned by the marker handler of a stale index

if False:  # names for the type comments only: mypy reads this, MicroPython compiles it away
    from typing import Any, Callable  # noqa: F401

_RESULT_FIELDS = ("handled", "ignored", "deferred", "errors")

# None on a build without sys.exc_info: publish then uses `except ... as e`
_exc_info = getattr(sys, "exc_info", None)

_next_id = [1]  # subscription ids are unique in the process


class NestingTooDeep(InternalError):
    """A handler published while MAX_DEPTH publishes were already nested (a runaway chain)."""


class EventDispatchResult(Record):
    """What one publish did: `handled`, `ignored`, `deferred`, `errors`.
    The bus may reuse the record: read it before the next publish, copy() it to keep it."""

    # The fields Record.__init__ sets, declared for the type checker (a bare annotation
    # compiles to nothing on MicroPython: no class attribute, no bytecode).
    handled: int
    ignored: int
    deferred: int
    errors: int

    def __init__(self, handled=0, ignored=0, deferred=0, errors=0):
        Record.__init__(self, _RESULT_FIELDS, (handled, ignored, deferred, errors))
        # handlers and their subscriptions, of a prebuilt per-topic record (bus internal)
        self._h = ()  # type: tuple[Callable[[Any], Any], ...]
        self._subs = ()  # type: tuple[EventSubscription, ...]

    def copy(self):
        """A detached copy, safe to keep across publishes."""
        return EventDispatchResult(self.handled, self.ignored, self.deferred, self.errors)


def _check_priority(priority):
    check_int(priority, "priority", 0, 255)


def _check_topics(topics):
    if isinstance(topics, EventTopic):
        return (topics,)
    if isinstance(topics, (str, bytes)) or not isinstance(topics, (list, tuple)):
        raise TypeError("topics must be a list of EventTopic, got %s" % type(topics).__name__)
    if not topics:
        raise ValueError("topics must not be empty")
    out = []
    for i, t in enumerate(topics):
        if not isinstance(t, EventTopic):
            raise TypeError("topics[%d] must be an EventTopic, got %s" % (i, type(t).__name__))
        if t not in out:
            out.append(t)
    return tuple(out)


class EventSubscription:
    """A named handler for one or more topics: EventSubscription(name, topics, handler).

    `handler(event)` returns None/EventResponse.HANDLED, IGNORED, DEFERRED or
    EventResponse.Error(message). `id` is unique in the process and fixed at creation."""

    # Defaults as class attributes: an instance stores only what differs (heap per
    # subscription). Writing one on an instance shadows the class value.
    priority = SubscriptionPriority.NORMAL
    _active = True
    _bus = None  # type: EventBus | None  # the bus it is subscribed to
    _seq = 0  # subscription order on its bus
    _alias = None

    def __init__(self, name, topics, handler):
        _check_name(name, "name")
        topics = self.topics = _check_topics(topics)
        if not callable(handler):
            raise TypeError("handler must be callable, got %s" % type(handler).__name__)
        self.name = name
        self.handler = handler
        self.id = _next_id[0]
        _next_id[0] += 1
        if EventTopic.ALL in topics:
            self._keys = None
        else:
            keys = []
            for t in topics:
                keys.append(t._key)
            self._keys = tuple(keys)

    def with_priority(self, priority):
        """Set the priority (0..255, lower runs first) and return the subscription."""
        _check_priority(priority)
        self.priority = priority
        if self._bus is not None:
            self._bus._changed(self, True)
        return self

    def pause(self):
        """Stop delivering to this subscription (from the next publish) until resume()."""
        self._set_active(False)

    def resume(self):
        """Deliver again from the next publish."""
        self._set_active(True)

    def _set_active(self, active):
        if self._active != active:
            self._active = active
            if self._bus is not None:
                self._bus._changed(self, False)

    @property
    def is_active(self):
        """False while paused."""
        return self._active

    def _callable(self):
        # The handler as placed in a dispatch tuple. A tuple must hold each callable
        # once (the slow path finds a handler's position by identity), so a handler
        # object subscribed twice gets a per-subscription forwarding function.
        a = self._alias
        if a is None:
            h = self.handler

            def a(event):
                return h(event)

            self._alias = a
        return a

    def __repr__(self):
        return "EventSubscription(%r, id=%d, priority=%d%s)" % (
            self.name, self.id, self.priority, "" if self._active else ", paused")


def _before(a, b):
    # True when subscription a is delivered before b.
    return a.priority < b.priority or (a.priority == b.priority and a._seq < b._seq)


def _insert(lst, sub):
    # Insert into a list kept in delivery order (no sort keys: nothing to collect).
    i = len(lst)
    while i and _before(sub, lst[i - 1]):
        i -= 1
    lst.insert(i, sub)


def _merge(a, b):
    # Merge two lists already in delivery order, keeping active subscriptions only.
    out = []
    i = j = 0
    na = len(a)
    nb = len(b)
    while i < na or j < nb:
        if j >= nb or (i < na and _before(a[i], b[j])):
            s = a[i]
            i += 1
        else:
            s = b[j]
            j += 1
        if s._active:
            out.append(s)
    return out


def _position(handlers, h):
    i = 0
    for x in handlers:
        if x is h:
            return i
        i += 1
    raise InternalError("event bus: handler not found in its dispatch tuple")


def _describe(what):
    if isinstance(what, BaseException):
        return "raised %s: %s" % (type(what).__name__, what)
    if isinstance(what, _ErrorResponse):
        return "returned %r" % (what,)
    if what is None:
        return "raised an exception"
    return "returned %r (expected None or an EventResponse)" % (what,)


def _print_error(name, what):
    print("helix_ipc: event handler %r %s" % (name, _describe(what)), file=sys.stderr)


class EventBus:
    """Publish/subscribe by topic. See the module header for contexts and guarantees.

    `events_dispatched` counts publishes delivered, `events_dropped` publishes not
    delivered (bus paused, or nesting limit hit). `error_hook(name, error)` is called for
    each failing handler with the subscription name and the exception raised (None if
    this build cannot tell) or the value returned; None prints one line to stderr.

    Interrupt layer (helix_ipc.isr): `publish_from_isr(kind, a=0, b=0) -> bool` is
    hard-IRQ safe (no allocation, no lock, never raises; False = dropped and counted);
    posts are delivered through publish, in order, by a drain scheduled with
    micropython.schedule, or by `poll() -> int` (the only way on CPython).
    `isr_stats()`: posted, delivered, dropped, schedule_failures, high_water.
    `isr_capacity` sizes the post ring (default: the board profile's)."""

    def __init__(self, isr_capacity=None):
        self.events_dispatched = 0
        self.events_dropped = 0
        self.error_hook = None
        self._subs = {}  # id -> subscription
        self._specific = {}  # topic key -> [subscriptions naming that topic]
        self._all = []  # subscriptions to EventTopic.ALL
        self._seq = 0
        self._lock = new_lock()
        self._paused = False
        self._dirty = False  # subscriptions changed since the index was built
        self._live_index = {}  # type: dict[int | str, EventDispatchResult]
        self._live_fallback = EventDispatchResult()
        self._marker_fallback = _marker_record(_rebuild_marker)
        self._paused_fallback = _marker_record(_paused_marker)
        self._index = self._live_index
        self._fallback = self._live_fallback
        # dispatch state: the record being dispatched (None when idle), the handler
        # being called and its return value (read by the slow paths)
        self._res = None  # type: EventDispatchResult | None
        self._cur = None  # type: Callable[[Any], Any] | None
        self._r = None
        self._depth = 0
        self._records = [EventDispatchResult() for _ in range(MAX_DEPTH + 1)]
        # prebound so that the hot path never creates a bound method
        self._slow = self._slow_path
        self._recover = self._recover_path
        self._nested = self._nested_path
        # interrupt layer: the ring exists before any IRQ can post; both entry points
        # are bound once here (taking a bound method in an IRQ would allocate). Its
        # module (and the board profile's) load with the first bus, not at import.
        from .isr import IsrQueue

        if isr_capacity is None:
            from .board import get

            isr_capacity = get("isr_capacity")
        self._isr = IsrQueue(
            isr_capacity,
            self.publish, nullary=Event.Shutdown, custom=Event.Custom,
        )
        self.publish_from_isr = self._isr.post
        self.poll = self._isr.poll

    def isr_stats(self):
        """Counters of the interrupt layer: posted, delivered, dropped,
        schedule_failures, high_water (also errors: posts the drain could not build)."""
        return self._isr.stats()

    # -- publishing --------------------------------------------------------------------
    if _exc_info is not None:

        def publish(self, event):
            """Deliver `event` to every matching active subscription, in priority order.
            Returns an EventDispatchResult (reused: read it before the next publish)."""
            if self._res is not None:
                return (self._nested)(event)
            try:
                self._res = self._index.get(event._topic_key, self._fallback)
                for self._cur in self._res._h:  # noqa: B020 - on self: keeps the frame small
                    self._r = (self._cur)(event)
                    if self._r is not None and self._r is not _HANDLED:
                        return (self._slow)(event)
            except Exception:
                return (self._recover)(event)
            except BaseException:
                self._res = None
                raise
            self.events_dispatched += 1
            event = self._res
            self._res = None
            return event

    else:

        def publish(self, event):
            """Deliver `event` to every matching active subscription, in priority order.
            Returns an EventDispatchResult (reused: read it before the next publish)."""
            if self._res is not None:
                return (self._nested)(event)
            try:
                self._res = self._index.get(event._topic_key, self._fallback)
                for self._cur in self._res._h:  # noqa: B020 - on self: keeps the frame small
                    self._r = (self._cur)(event)
                    if self._r is not None and self._r is not _HANDLED:
                        return (self._slow)(event)
            except Exception as e:
                return self._recover(event, e)
            except BaseException:
                self._res = None
                raise
            self.events_dispatched += 1
            event = self._res
            self._res = None
            return event

    def _slow_path(self, event):
        # The fast loop saw handler self._cur return self._r (not None/HANDLED).
        r = self._r
        res = self._res
        if r is _PAUSED:
            self._res = None
            self.events_dropped += 1
            return self._record(0)
        if r is _REBUILD:  # first publish since a change: build the index, then deliver
            self._res = None
            self._refresh()
            return self.publish(event)
        if res is None:  # only the fast loop calls this, with its record set
            raise InternalError("event bus: slow path outside a dispatch")
        i = _position(res._h, self._cur)
        rec = self._record(i)
        self._count(rec, res._subs[i], r)
        return self._finish(event, res, i + 1, rec)

    def _recover_path(self, event, exc=None):
        # The fast loop raised: from handler self._cur, or before dispatch began.
        if exc is None and _exc_info is not None:
            exc = _exc_info()[1]
        res = self._res
        if res is None:
            if not isinstance(event, Event):
                raise TypeError("event must be an Event, got %s" % type(event).__name__)
            raise InternalError("event bus: publish failed before dispatch: %r" % (exc,))
        i = _position(res._h, self._cur)
        rec = self._record(i)
        rec.errors = 1
        self._report(res._subs[i], exc)
        return self._finish(event, res, i + 1, rec)

    def _record(self, handled):
        rec = self._records[self._depth]
        rec.handled = handled
        rec.ignored = 0
        rec.deferred = 0
        rec.errors = 0
        return rec

    def _finish(self, event, res, i, rec):
        # Slow loop: deliver to handlers i.. of res, counting into rec.
        h = res._h
        subs = res._subs
        n = len(h)
        while i < n:
            x = h[i]
            self._cur = x
            try:
                r = x(event)
            except Exception as e:
                rec.errors += 1
                self._report(subs[i], e)
            except BaseException:
                self._res = None
                raise
            else:
                self._count(rec, subs[i], r)
            i += 1
        self._res = None
        self.events_dispatched += 1
        return rec

    def _count(self, rec, sub, r):
        if r is None or r is _HANDLED:
            rec.handled += 1
        elif r is _IGNORED:
            rec.ignored += 1
        elif r is _DEFERRED:
            rec.deferred += 1
        else:
            rec.errors += 1
            self._report(sub, r)

    def _report(self, sub, what):
        hook = self.error_hook
        if hook is not None:
            try:
                hook(sub.name, what)
                return
            except Exception as e:  # a broken hook must not break dispatch
                _print_error("error_hook", e)
        _print_error(sub.name, what)

    def _nested_path(self, event):
        # A handler published: deliver completely, then restore the outer dispatch.
        d = self._depth + 1
        if d > MAX_DEPTH:
            self.events_dropped += 1
            raise NestingTooDeep(
                "publish nested %d deep inside handlers (limit %d): runaway event chain?"
                % (d, MAX_DEPTH)
            )
        res = self._res
        cur = self._cur
        r = self._r
        self._depth = d
        self._res = None
        try:
            return self.publish(event)
        finally:
            self._res = res
            self._cur = cur
            self._r = r
            self._depth = d - 1

    # -- subscriptions -----------------------------------------------------------------
    # Changes update the ordered lists (in place, under the lock) and mark the index
    # stale by swapping in an empty index whose fallback is a marker handler: the next
    # publish finds it on its slow path, rebuilds every record once (copy-on-write) and
    # delivers. A burst of subscribes thus costs one rebuild, and the fast path never
    # checks a flag. A dispatch in progress keeps the tuple it started with.

    def subscribe(self, subscription):
        """Add a subscription; returns its id. It receives events from the next publish."""
        if not isinstance(subscription, EventSubscription):
            raise TypeError(
                "subscription must be an EventSubscription, got %s" % type(subscription).__name__
            )
        lock = self._lock
        if lock:
            lock.acquire()
        try:
            if subscription._bus is not None:
                raise ValueError("subscription %r is already subscribed" % subscription.name)
            subscription._bus = self
            self._seq += 1
            subscription._seq = self._seq
            self._subs[subscription.id] = subscription
            self._place(subscription)
            self._stale()
        finally:
            if lock:
                lock.release()
        return subscription.id

    def unsubscribe(self, subscription_id):
        """Remove a subscription by id (from the next publish). False if unknown."""
        check_int(subscription_id, "subscription_id")
        lock = self._lock
        if lock:
            lock.acquire()
        try:
            sub = self._subs.pop(subscription_id, None)
            if sub is None:
                return False
            sub._bus = None
            self._unplace(sub)
            self._stale()
        finally:
            if lock:
                lock.release()
        return True

    def subscription_count(self):
        """Number of subscriptions, paused ones included."""
        return len(self._subs)

    def subscriptions(self):
        """Every subscription, in subscription order (a new list: for inspection)."""
        subs = list(self._subs.values())
        subs.sort(key=lambda s: s._seq)
        return subs

    def subscriptions_by_topic(self):
        """{topic name: [subscription names in subscription order]} ("(paused)" marked):
        what the REPL's status shows."""
        out = {}  # type: dict[str, list[str]]
        for s in self.subscriptions():
            for t in s.topics:
                out.setdefault(t.name, []).append(s.name if s._active else s.name + " (paused)")
        return out

    def _place(self, sub):
        keys = sub._keys
        if keys is None:
            _insert(self._all, sub)
        else:
            for k in keys:
                lst = self._specific.get(k)
                if lst is None:
                    lst = self._specific[k] = []
                _insert(lst, sub)

    def _unplace(self, sub):
        keys = sub._keys
        if keys is None:
            self._all.remove(sub)
        else:
            for k in keys:
                lst = self._specific[k]
                lst.remove(sub)
                if not lst:
                    del self._specific[k]

    def _changed(self, sub, reorder):
        # A subscription's priority (reorder) or paused state changed.
        lock = self._lock
        if lock:
            lock.acquire()
        try:
            if sub._bus is self:
                if reorder:
                    self._unplace(sub)
                    self._place(sub)
                self._stale()
        finally:
            if lock:
                lock.release()

    def _stale(self):
        # Under the lock.
        self._dirty = True
        if not self._paused:
            self._index = _EMPTY
            self._fallback = self._marker_fallback

    def _refresh(self):
        # Build every record from the ordered lists and swap the new index in.
        lock = self._lock
        if lock:
            lock.acquire()
        try:
            if self._dirty:
                alls = self._all
                index = {}
                for k, spec in self._specific.items():
                    if _any_active(spec):
                        index[k] = _make_record(_merge(spec, alls))
                    # else only ALL subscribers (if any) want it: the fallback serves it
                self._live_fallback = _make_record(_merge(alls, ()))
                self._live_index = index
                self._dirty = False
                if not self._paused:
                    self._index = index
                    self._fallback = self._live_fallback
        finally:
            if lock:
                lock.release()

    # -- bus state ---------------------------------------------------------------------
    def pause(self):
        """Deliver nothing until resume(); each publish meanwhile counts in events_dropped."""
        lock = self._lock
        if lock:
            lock.acquire()
        self._paused = True
        self._index = _EMPTY
        self._fallback = self._paused_fallback
        if lock:
            lock.release()

    def resume(self):
        """Deliver again from the next publish."""
        lock = self._lock
        if lock:
            lock.acquire()
        self._paused = False
        if self._dirty:
            self._index = _EMPTY
            self._fallback = self._marker_fallback
        else:
            self._index = self._live_index
            self._fallback = self._live_fallback
        if lock:
            lock.release()

    def is_active(self):
        """False while paused."""
        return not self._paused


_EMPTY = {}  # type: dict[int | str, EventDispatchResult]  # the index while paused or stale; never written


def _paused_marker(event):
    return _PAUSED


def _rebuild_marker(event):
    return _REBUILD


def _marker_record(marker):
    rec = EventDispatchResult()
    rec._h = (marker,)
    return rec


def _any_active(subs):
    for s in subs:
        if s._active:
            return True
    return False


def _make_record(subs):
    handlers = []
    seen = set()
    for s in subs:
        h = s.handler
        if id(h) in seen:
            h = s._callable()
        seen.add(id(h))
        handlers.append(h)
    rec = EventDispatchResult(len(subs))
    rec._h = tuple(handlers)
    rec._subs = tuple(subs)
    return rec


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
