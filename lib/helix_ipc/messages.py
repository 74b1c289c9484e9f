# helix_ipc.messages: the values the message router carries: MessagePriority,
# ModuleAddress, Request and Response.
#
# Building one allocates, so do it in task context (main loop, scheduler callback,
# thread), never in a hard IRQ. They are plain values: a prebuilt Request or Response
# can be sent any number of times, and reading their fields is safe from any context.
# Request ids come from one counter guarded by a lock, so threads may build requests.

from ._compat import const, new_lock
from .errors import check_int

_ID_MASK = const((1 << 29) - 1)  # request ids wrap here: they stay small ints on 32-bit boards

if False:  # names for the type comments only: mypy reads this, MicroPython compiles it away
    from typing import Any  # noqa: F401


class MessagePriority:
    """Mailbox priorities (ints). Higher is served first; NORMAL is the default."""

    LOW = 0
    NORMAL = 1
    HIGH = 2
    CRITICAL = 3


def type_error(what, expected, value):
    """TypeError("<what> must be <expected>, got <type of value>")."""
    return TypeError("%s must be %s, got %s" % (what, expected, type(value).__name__))


def check_name(name, what="name"):
    if not isinstance(name, str):
        raise type_error(what, "a str", name)
    if not name:
        raise ValueError("%s must not be empty" % what)
    return name


# -- addresses -------------------------------------------------------------------------


class ModuleAddress:
    """Where a request comes from or goes to: `ModuleAddress.Id(n)`,
    `ModuleAddress.Name(s)` or `ModuleAddress.BROADCAST` (the one instance of this base
    class). Equal and hashable by value; `value` is the id, the name, or None."""

    value = None  # type: Any
    # Set below once the subclasses exist; declared for the type checker (a bare
    # annotation compiles to nothing on MicroPython).
    Id: "type[Id]"
    Name: "type[Name]"
    BROADCAST: "ModuleAddress"

    def __eq__(self, other):
        return other.__class__ is self.__class__ and other.value == self.value

    def __hash__(self):
        return hash(self.value) ^ id(self.__class__)

    def __repr__(self):
        if self.value is None:
            return "ModuleAddress.BROADCAST"
        return "ModuleAddress.%s(%r)" % (type(self).__name__, self.value)


class Id(ModuleAddress):
    """The module registered under this id (an int >= 0)."""

    def __init__(self, module_id):
        self.value = check_int(module_id, "module_id", 0)


class Name(ModuleAddress):
    """The module registered under this name (a non-empty str)."""

    def __init__(self, name):
        self.value = check_name(name)


ModuleAddress.Id = Id
ModuleAddress.Name = Name
ModuleAddress.BROADCAST = ModuleAddress()


# -- requests --------------------------------------------------------------------------

_ids = [0]  # the next request id
_id_lock = new_lock()  # None on builds without threads


def _bytes_like(what, value):
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise type_error(what, "bytes-like", value)
    return value


class Request:
    """A request to a module: `Request(sender, request_type, payload=b"")`.

    `sender` is a ModuleAddress (an int or str given here becomes Id/Name);
    `request_type` a non-empty str; `payload` bytes-like. `id` is unique among the last
    2**29 requests (a wrapping counter); `priority` is MessagePriority.NORMAL until
    `with_priority` changes it.
    """

    def __init__(self, sender, request_type, payload=b""):
        if not isinstance(sender, ModuleAddress):
            if isinstance(sender, str):
                sender = Name(sender)
            elif sender.__class__ is int:
                sender = Id(sender)
            else:
                raise type_error("sender", "a ModuleAddress, int or str", sender)
        self.sender = sender
        self.request_type = check_name(request_type, "request_type")
        self.payload = _bytes_like("payload", payload)
        self.priority = 1  # MessagePriority.NORMAL
        lock = _id_lock
        if lock is not None:
            lock.acquire()
        n = _ids[0]
        _ids[0] = (n + 1) & _ID_MASK
        if lock is not None:
            lock.release()
        self.id = n

    def with_payload(self, payload):
        """Set the payload (bytes-like); returns the request."""
        self.payload = _bytes_like("payload", payload)
        return self

    def with_priority(self, priority):
        """Set the MessagePriority; returns the request."""
        self.priority = check_int(priority, "priority", 0, 3)
        return self

    def __repr__(self):
        return "Request(id=%d, sender=%r, request_type=%r, priority=%d, payload=%d bytes)" % (
            self.id, self.sender, self.request_type, self.priority, len(self.payload))


# -- responses -------------------------------------------------------------------------


class Response:
    """What a handler returns. Variants: `Response.Success(data)` (data bytes-like),
    `Response.Rejected(reason)`, `Response.Error(message)` (reason and message str) and
    `Response.NOT_SUPPORTED` (the one instance of this base class). Tell them apart with
    `isinstance(r, Response.Success)` or `r.is_success`. `Response.success`,
    `.rejected` and `.error` build the variants; `Response.ok()` is a shared
    Success(b"") (allocates nothing). Equal by variant and value."""

    is_success = False
    value = None  # type: Any
    # Set below once the subclasses exist; declared for the type checker.
    success: "type[Success]"
    rejected: "type[Rejected]"
    error: "type[Error]"
    Success: "type[Success]"
    Rejected: "type[Rejected]"
    Error: "type[Error]"
    NOT_SUPPORTED: "Response"

    # equal by class and value, as addresses are
    __eq__ = ModuleAddress.__eq__
    __hash__ = ModuleAddress.__hash__

    def __repr__(self):
        if self.__class__ is Response:
            return "Response.NOT_SUPPORTED"
        return "Response.%s(%r)" % (type(self).__name__, self.value)

    @staticmethod
    def ok():
        """Response.Success(b""): one shared instance."""
        return _OK


class Success(Response):
    """The request was handled; `data` (bytes-like) is the result."""

    is_success = True

    def __init__(self, data=b""):
        self.value = self.data = _bytes_like("data", data)


def _text(what, text):
    if not isinstance(text, str):
        raise type_error(what, "a str", text)
    return text


class Rejected(Response):
    """The module refused the request; `reason` (a str) says why."""

    def __init__(self, reason):
        self.value = self.reason = _text("reason", reason)


class Error(Response):
    """Handling failed; `message` (a str) says how."""

    def __init__(self, message):
        self.value = self.message = _text("message", message)


Response.Success = Response.success = Success
Response.Rejected = Response.rejected = Rejected
Response.Error = Response.error = Error
Response.NOT_SUPPORTED = Response()
_OK = Success(b"")
