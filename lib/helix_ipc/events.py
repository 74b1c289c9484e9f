# helix_ipc.events: event values for the event bus (topics, events, responses).
#
# Plain value classes, no state beyond their fields. Construct them in task context
# (main loop, scheduler callback, thread); an IRQ handler posts a kind and two small
# fields through `EventBus.publish_from_isr` instead of building an event itself.
# Reading fields, `.topic` of a built-in variant and the constants is allocation-free
# and safe anywhere.
#
# The namespace members (EventTopic.TICK, Event.Tick, EventResponse.HANDLED, ...) are
# assigned after their classes exist; the class bodies declare them with bare, quoted
# annotations for the type checker: MicroPython compiles those to nothing (no attribute,
# no bytecode) and CPython only records the string in __annotations__.
#
# Each event carries `_topic_key`, the small int (built-in topics) or str (custom topics) the
# bus indexes by, so that dispatch never calls a Python-level __hash__/__eq__.

from ._compat import const

_K_TICK = const(0)
_K_SHUTDOWN = const(1)
_K_MEMORY_PRESSURE = const(2)
_K_CPU_HOTPLUG = const(3)
_K_PROCESS = const(4)
_K_INTERRUPT = const(5)
_K_ALL = const(6)


def _check_name(name, what):
    if not isinstance(name, str):
        raise TypeError("%s must be a str, got %s" % (what, type(name).__name__))
    if not name:
        raise ValueError("%s must not be empty" % what)
    return name


# Value equality for the classes that list their fields in `_fields` (the Event variants,
# custom topics, EventResponse.Error): the same class and equal fields. One pair of
# functions shared by all of them (each function is ~80-150 B of import heap).
def _eq(self, other):
    if type(other) is not type(self):
        return False
    for f in self._fields:
        if getattr(other, f) != getattr(self, f):
            return False
    return True


def _hash(self):
    h = id(type(self))
    for f in self._fields:
        h ^= hash(getattr(self, f))
    return h


class EventTopic:
    """What a subscription listens to: TICK, SHUTDOWN, MEMORY_PRESSURE, CPU_HOTPLUG,
    PROCESS, INTERRUPT, ALL (every event), or EventTopic.Custom(name).
    Topics compare and hash by value: EventTopic.Custom("x") == EventTopic.Custom("x")."""

    TICK: "EventTopic"
    SHUTDOWN: "EventTopic"
    MEMORY_PRESSURE: "EventTopic"
    CPU_HOTPLUG: "EventTopic"
    PROCESS: "EventTopic"
    INTERRUPT: "EventTopic"
    ALL: "EventTopic"
    Custom: "type[_CustomTopic]"

    # The constants are singletons, equal only to themselves (object's __eq__/__hash__).

    def __init__(self, key, name):
        self._key = key  # a small int for the constants, the name (a str) for custom ones
        self.name = name  # the constant's name ("TICK") or the custom name

    def __repr__(self):
        if isinstance(self._key, str):
            return "EventTopic.Custom(%r)" % self._key
        return "EventTopic." + self.name


class _CustomTopic(EventTopic):
    """EventTopic.Custom(name): a user-defined topic, equal to any other with that name."""

    _fields = ("name",)
    __eq__ = _eq
    __hash__ = _hash

    def __init__(self, name):
        self._key = self.name = _check_name(name, "custom topic name")


EventTopic.TICK = EventTopic(_K_TICK, "TICK")
EventTopic.SHUTDOWN = EventTopic(_K_SHUTDOWN, "SHUTDOWN")
EventTopic.MEMORY_PRESSURE = EventTopic(_K_MEMORY_PRESSURE, "MEMORY_PRESSURE")
EventTopic.CPU_HOTPLUG = EventTopic(_K_CPU_HOTPLUG, "CPU_HOTPLUG")
EventTopic.PROCESS = EventTopic(_K_PROCESS, "PROCESS")
EventTopic.INTERRUPT = EventTopic(_K_INTERRUPT, "INTERRUPT")
EventTopic.ALL = EventTopic(_K_ALL, "ALL")
EventTopic.Custom = _CustomTopic


class MemoryPressureLevel:
    """Levels of Event.MemoryPressure, small ints ordered by severity."""

    NORMAL = 0
    LOW = 1
    CRITICAL = 2
    OOM = 3

    @staticmethod
    def name(level):
        """"NORMAL", "LOW", "CRITICAL" or "OOM"."""
        return ("NORMAL", "LOW", "CRITICAL", "OOM")[level]


class SubscriptionPriority:
    """Delivery order: lower runs first. Any int 0..255 is a priority."""

    HIGHEST = 0
    HIGH = 64
    NORMAL = 128
    LOW = 192
    LOWEST = 255


# -- events ------------------------------------------------------------------------


class Event:
    """Base class of every event. The variants are Event.Tick, Event.Shutdown,
    Event.MemoryPressure, Event.CpuHotplug, Event.ProcessCreated, Event.ProcessExited,
    Event.Interrupt and Event.Custom; each has named fields and a `.topic`.
    Each variant is constructible positionally from its fields, in `_fields` order.
    Events compare equal when they are the same variant with equal fields."""

    # The variant classes are deleted from the module after being attached below, so
    # ruff cannot resolve these names; mypy resolves them as written.
    Tick: "type[Tick]"  # noqa: F821
    Shutdown: "type[Shutdown]"  # noqa: F821
    MemoryPressure: "type[MemoryPressure]"  # noqa: F821
    CpuHotplug: "type[CpuHotplug]"  # noqa: F821
    ProcessCreated: "type[ProcessCreated]"  # noqa: F821
    ProcessExited: "type[ProcessExited]"  # noqa: F821
    Interrupt: "type[Interrupt]"  # noqa: F821
    Custom: "type[Custom]"  # noqa: F821
    _fields = ()  # type: tuple[str, ...]
    __eq__ = _eq
    __hash__ = _hash

    def __repr__(self):
        out = ""
        for f in self._fields:
            out += "%s=%r, " % (f, getattr(self, f))
        return "Event.%s(%s)" % (type(self).__name__, out[:-2])


class Tick(Event):
    """A timer tick: `timestamp_ns` since the tick source started, `tick_number`."""

    topic = EventTopic.TICK
    _topic_key = _K_TICK
    _fields = ("timestamp_ns", "tick_number")

    def __init__(self, timestamp_ns, tick_number):
        self.timestamp_ns = timestamp_ns
        self.tick_number = tick_number


class Shutdown(Event):
    """The system is shutting down."""

    topic = EventTopic.SHUTDOWN
    _topic_key = _K_SHUTDOWN

    def __init__(self):  # explicit: MicroPython's object() would accept arguments
        pass


class MemoryPressure(Event):
    """Memory is getting short: `level` (a MemoryPressureLevel), `available_bytes`."""

    topic = EventTopic.MEMORY_PRESSURE
    _topic_key = _K_MEMORY_PRESSURE
    _fields = ("level", "available_bytes")

    def __init__(self, level, available_bytes):
        if level not in (0, 1, 2, 3) or isinstance(level, bool):
            raise ValueError("level must be a MemoryPressureLevel (0..3), got %r" % (level,))
        self.level = level
        self.available_bytes = available_bytes


class CpuHotplug(Event):
    """A CPU went online (`online` True) or offline."""

    topic = EventTopic.CPU_HOTPLUG
    _topic_key = _K_CPU_HOTPLUG
    _fields = ("cpu_id", "online")

    def __init__(self, cpu_id, online):
        self.cpu_id = cpu_id
        self.online = online


class ProcessCreated(Event):
    """A process `pid` was created by `parent_pid` (topic PROCESS)."""

    topic = EventTopic.PROCESS
    _topic_key = _K_PROCESS
    _fields = ("pid", "parent_pid")

    def __init__(self, pid, parent_pid):
        self.pid = pid
        self.parent_pid = parent_pid


class ProcessExited(Event):
    """A process `pid` exited with `exit_code` (topic PROCESS)."""

    topic = EventTopic.PROCESS
    _topic_key = _K_PROCESS
    _fields = ("pid", "exit_code")

    def __init__(self, pid, exit_code):
        self.pid = pid
        self.exit_code = exit_code


class Interrupt(Event):
    """Hardware interrupt `vector` taken on `cpu_id`."""

    topic = EventTopic.INTERRUPT
    _topic_key = _K_INTERRUPT
    _fields = ("vector", "cpu_id")

    def __init__(self, vector, cpu_id):
        self.vector = vector
        self.cpu_id = cpu_id


class Custom(Event):
    """A user-defined event `name` (a non-empty str) with optional `data`, bytes-like
    (bytes, bytearray or memoryview; anything else raises TypeError). Its topic is
    EventTopic.Custom(name); `name` is fixed at construction."""

    _fields = ("name", "data")
    _topic = None  # built on the first read of `topic`

    def __init__(self, name, data=b""):
        self.name = self._topic_key = _check_name(name, "custom event name")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("data must be bytes-like, got %s" % type(data).__name__)
        self.data = data

    @property
    def topic(self):
        t = self._topic
        if t is None:
            t = self._topic = _CustomTopic(self.name)
        return t


Event.Tick = Tick
Event.Shutdown = Shutdown
Event.MemoryPressure = MemoryPressure
Event.CpuHotplug = CpuHotplug
Event.ProcessCreated = ProcessCreated
Event.ProcessExited = ProcessExited
Event.Interrupt = Interrupt
Event.Custom = Custom
del Tick, Shutdown, MemoryPressure, CpuHotplug, ProcessCreated, ProcessExited, Interrupt, Custom


# -- responses ---------------------------------------------------------------------


class EventResponse:
    """What a handler returns: EventResponse.HANDLED (or None), IGNORED, DEFERRED,
    or EventResponse.Error(message). The constants are singletons; compare with `is`
    or `==`."""

    HANDLED: "EventResponse"
    IGNORED: "EventResponse"
    DEFERRED: "EventResponse"
    Error: "type[_ErrorResponse]"

    def __init__(self, label):
        self._label = label

    def __repr__(self):
        if isinstance(self, _ErrorResponse):
            return "EventResponse.Error(%r)" % (self.message,)
        return "EventResponse." + self._label


class _ErrorResponse(EventResponse):
    """EventResponse.Error(message): the handler failed; counted in `errors`."""

    _fields = ("message",)
    __eq__ = _eq
    __hash__ = _hash

    def __init__(self, message):
        self.message = message


EventResponse.HANDLED = EventResponse("HANDLED")
EventResponse.IGNORED = EventResponse("IGNORED")
EventResponse.DEFERRED = EventResponse("DEFERRED")
EventResponse.Error = _ErrorResponse
