# helix_ipc.messages: the values the message router carries.
#
# MessagePriority, ModuleAddress, Request and Response. Building one allocates, so do
# it in task context (main loop, scheduler callback, thread), never in a hard IRQ.
# They are plain values: a prebuilt Request or Response can be sent any number of
# times, and reading their fields is safe from any context.

from ._compat import const, new_lock

_ID_MASK = const((1 << 29) - 1)  # request ids wrap here: they stay small ints on 32-bit boards

if False:  # names for the type comments only: mypy reads this, MicroPython compiles it away
    from typing import Any  # noqa: F401


class MessagePriority:
    """Mailbox priorities (ints). Higher is served first; NORMAL is the default."""

    LOW = 0
    NORMAL = 1
    HIGH = 2
    CRITICAL = 3


_PRIORITY_NAMES = ("LOW", "NORMAL", "HIGH", "CRITICAL")


def check_priority(priority):
    """`priority` if it is a MessagePriority value; TypeError/ValueError otherwise."""
    if priority.__class__ is not int:
        raise TypeError("priority must be a MessagePriority (int), got %s" % type(priority).__name__)
    if priority < 0 or priority > 3:
        raise ValueError("priority must be a MessagePriority (0..3), got %d" % priority)
    return priority


# -- addresses -------------------------------------------------------------------------


class ModuleAddress:
    """Where a request comes from or goes to: `ModuleAddress.Id(n)`,
    `ModuleAddress.Name(s)` or `ModuleAddress.BROADCAST`. Equal and hashable by value."""

    value = None  # type: Any  # the id (int) or the name (str); None for BROADCAST
    # The variants, set below once the subclasses exist; declared here for the type
    # checker (a bare annotation compiles to nothing on MicroPython).
    Id: "type[Id]"
    Name: "type[Name]"
    BROADCAST: "_Broadcast"

    def __eq__(self, other):
        return other.__class__ is self.__class__ and other.value == self.value

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self):
        return hash(self.value) ^ 0x5A5A5A5


class Id(ModuleAddress):
    """The module registered under this id (an int >= 0)."""

    def __init__(self, module_id):
        self.value = check_module_id(module_id)

    def __repr__(self):
        return "ModuleAddress.Id(%d)" % self.value


class Name(ModuleAddress):
    """The module registered under this name (a non-empty str)."""

    def __init__(self, name):
        self.value = check_name(name)

    def __repr__(self):
        return "ModuleAddress.Name(%r)" % self.value


class _Broadcast(ModuleAddress):
    def __repr__(self):
        return "ModuleAddress.BROADCAST"


ModuleAddress.Id = Id
ModuleAddress.Name = Name
ModuleAddress.BROADCAST = _Broadcast()


def check_module_id(module_id):
    if module_id.__class__ is not int:
        raise TypeError("module_id must be an int, got %s" % type(module_id).__name__)
    if module_id < 0:
        raise ValueError("module_id must be >= 0, got %d" % module_id)
    return module_id


def check_name(name):
    if not isinstance(name, str):
        raise TypeError("name must be a str, got %s" % type(name).__name__)
    if not name:
        raise ValueError("name must not be empty")
    return name


def _address(sender):
    # A Request's sender: a ModuleAddress, or an int id / str name turned into one.
    if isinstance(sender, ModuleAddress):
        return sender
    if isinstance(sender, str):
        return Name(sender)
    if sender.__class__ is int:
        return Id(sender)
    raise TypeError(
        "sender must be a ModuleAddress (or an int id / str name), got %s" % type(sender).__name__
    )


# -- requests --------------------------------------------------------------------------

_ids = [0]  # the next request id
_id_lock = [None]


def _next_id():
    lock = _id_lock[0]
    if lock is None:
        lock = _id_lock[0] = new_lock()
    if lock is None:  # no threads on this build
        n = _ids[0]
        _ids[0] = (n + 1) & _ID_MASK
        return n
    with lock:
        n = _ids[0]
        _ids[0] = (n + 1) & _ID_MASK
    return n


def _check_payload(payload):
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise TypeError("payload must be bytes-like, got %s" % type(payload).__name__)
    return payload


class Request:
    """A request to a module: `Request(sender, request_type, payload=b"")`.

    `id` is unique among the last 2**29 requests (a wrapping counter); `sender` is a
    ModuleAddress (an int or str given here is turned into Id/Name); `priority` is
    MessagePriority.NORMAL until `with_priority` changes it.
    """

    def __init__(self, sender, request_type, payload=b""):
        if not isinstance(request_type, str):
            raise TypeError("request_type must be a str, got %s" % type(request_type).__name__)
        self.sender = _address(sender)
        self.request_type = request_type
        self.payload = _check_payload(payload)
        self.priority = 1  # MessagePriority.NORMAL
        self.id = _next_id()

    def with_payload(self, payload):
        """Set the payload (bytes-like); returns the request."""
        self.payload = _check_payload(payload)
        return self

    def with_priority(self, priority):
        """Set the MessagePriority; returns the request."""
        self.priority = check_priority(priority)
        return self

    def __repr__(self):
        return "Request(id=%d, sender=%r, request_type=%r, priority=%s, payload=%d bytes)" % (
            self.id,
            self.sender,
            self.request_type,
            _PRIORITY_NAMES[self.priority],
            len(self.payload),
        )


# -- responses -------------------------------------------------------------------------


class Response:
    """What a handler returns. Variants: `Response.Success(data)`,
    `Response.Rejected(reason)`, `Response.Error(message)`, `Response.NOT_SUPPORTED`;
    tell them apart with `isinstance(r, Response.Success)` or `r.is_success`.
    Helpers: `Response.success(data)`, `Response.ok()`, `Response.rejected(reason)`,
    `Response.error(message)`. Equal by variant and value."""

    is_success = False
    value = None  # type: Any
    # The variants, set below once the subclasses exist; declared here for the type
    # checker (a bare annotation compiles to nothing on MicroPython).
    Success: "type[Success]"
    Rejected: "type[Rejected]"
    Error: "type[Error]"
    NOT_SUPPORTED: "_NotSupported"

    def __eq__(self, other):
        return other.__class__ is self.__class__ and other.value == self.value

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self):
        return hash(self.value) ^ id(self.__class__)

    @staticmethod
    def success(data=b""):
        """Response.Success(data)."""
        return Success(data)

    @staticmethod
    def ok():
        """Response.Success(b"") (one shared instance: building it allocates nothing)."""
        return _OK

    @staticmethod
    def rejected(reason):
        """Response.Rejected(reason)."""
        return Rejected(reason)

    @staticmethod
    def error(message):
        """Response.Error(message)."""
        return Error(message)


class Success(Response):
    """The request was handled; `data` is the result (bytes, usually)."""

    is_success = True

    def __init__(self, data=b""):
        self.value = self.data = data

    def __repr__(self):
        return "Response.Success(%r)" % (self.data,)


def _check_text(what, text):
    if not isinstance(text, str):
        raise TypeError("%s must be a str, got %s" % (what, type(text).__name__))
    return text


class Rejected(Response):
    """The module refused the request; `reason` (a str) says why."""

    def __init__(self, reason):
        self.value = self.reason = _check_text("reason", reason)

    def __repr__(self):
        return "Response.Rejected(%r)" % self.reason


class Error(Response):
    """Handling failed; `message` (a str) says how."""

    def __init__(self, message):
        self.value = self.message = _check_text("message", message)

    def __repr__(self):
        return "Response.Error(%r)" % self.message


class _NotSupported(Response):
    def __repr__(self):
        return "Response.NOT_SUPPORTED"


Response.Success = Success
Response.Rejected = Rejected
Response.Error = Error
Response.NOT_SUPPORTED = _NotSupported()
_OK = Success(b"")
