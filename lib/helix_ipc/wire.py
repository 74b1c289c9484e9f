# helix_ipc.wire: the bytes that cross between nodes (the serial link, the MQTT bridge).
#
# - A value codec, a strict subset of CBOR (RFC 8949): None, bool, int (-2**64..2**64-1),
#   bytes, str, list/tuple (decoded as list), dict with int or str keys; definite lengths
#   only, nesting at most MAX_DEPTH containers. No floats, tags or indefinite lengths.
#   decode() only builds those plain values: nothing received is ever evaluated, imported
#   or looked up by name. Anything else is a WireError (a ValueError).
# - Conversions between helix values (Event, EventTopic, Request, Response) and such plain
#   values, checking every field of what was received (table-driven: the kind code of an
#   event or a built-in topic is its index in _EVENTS / _TOPICS). Those only a requester
#   needs (topic_to_obj, request_to_obj, obj_to_response) are helix_ipc.remote_out's.
# - Framing for byte streams (the serial link): "~" + base64(payload + CRC-16) + "\n"
#   (crc16, frame; the reading side is helix_ipc.link's). A frame holds only printable
#   ASCII and "\n": no byte of it is a REPL control key (Ctrl-A..E, Ctrl-C) or "\r", so
#   frames can share a board's REPL line (see docs/link.md).
# Kept small: a board imports it to serve a link (error texts are short: they go to
# counters and error hooks, or name the type that cannot be encoded).
#
# Contexts: task context (allocates); never a hard IRQ. Pure functions.

from binascii import b2a_base64

from ._compat import const
from .events import Event, EventTopic
from .messages import Request, Response

MAX_DEPTH = const(8)

if False:  # names for the type comments only: mypy reads this, MicroPython compiles it away
    from typing import Any  # noqa: F401


class WireError(ValueError):
    """Malformed, truncated, over-deep or otherwise unacceptable wire data."""


# isinstance() class tuples, made once (a tuple of names in a call is built on every call)
_BYTES = (str, bytes, bytearray, memoryview)
_CONTAINERS = (list, tuple, dict)
_KEYS = (int, str)
_NO_KEY = object()  # decode: a map waiting for its next key


def _bad(what):
    return WireError("wire: " + what)


# -- the value codec (CBOR subset) --------------------------------------------------------

def encode(x):
    """The CBOR bytes of x. TypeError for a type outside the subset, ValueError for an
    int out of range or nesting deeper than MAX_DEPTH."""
    out = bytearray()
    _put(out, (x,), 0)
    return bytes(out)


def _put(out, xs, depth):
    # the items of xs (a dict's keys and values) onto out: scalars here, no call each
    # (a bytecode frame this big is a heap allocation per call on a board); one call
    # per nested container only
    d = isinstance(xs, dict)
    for v in xs:
        if d:
            if isinstance(v, bool) or not isinstance(v, _KEYS):
                raise TypeError("wire: dict key " + type(v).__name__)
            _put(out, (v,), depth)
            v = xs[v]
        if v is None or v is True or v is False:
            out.append(0xF6 if v is None else 0xF4 + v)
        elif isinstance(v, int):
            _head(out, 0, v) if v >= 0 else _head(out, 0x20, -1 - v)
        elif isinstance(v, _BYTES):
            m = 0x40
            if isinstance(v, str):
                v = v.encode()
                m = 0x60
            _head(out, m, len(v))
            out.extend(v)
        elif isinstance(v, _CONTAINERS):
            if depth >= MAX_DEPTH:
                raise ValueError("wire: too deep")
            _head(out, 0xA0 if isinstance(v, dict) else 0x80, len(v))
            _put(out, v, depth + 1)
        else:
            raise TypeError("wire: cannot encode " + type(v).__name__)


def _head(out, major, n):
    # (small enough a frame to stay on the C stack)
    if n < 24:
        return out.append(major | n)
    if n < 0x100:
        out.append(major | 24)
        k = 1
    elif n < 0x10000:
        out.append(major | 25)
        k = 2
    elif n < 0x100000000:
        out.append(major | 26)
        k = 4
    elif n >> 64:
        raise ValueError("wire: int too big")
    else:
        out.append(major | 27)
        k = 8
    out.extend(n.to_bytes(k, "big"))


def decode(b):
    """The value encoded in b (bytes-like). WireError for malformed, truncated,
    trailing or over-deep input."""
    n = len(b)
    i = 0
    open_ = []  # type: list[Any]  # the containers being filled, innermost last: [container, items left, key]
    while True:
        if i >= n:
            raise _bad("truncated")
        v = b[i] & 31
        major = b[i] >> 5
        i += 1
        if major == 7:
            if not 20 <= v <= 22:
                raise _bad("float/simple")
            x = (False, True, None)[v - 20]  # type: Any
        else:
            if v >= 24:
                if v > 27:
                    raise _bad("indefinite")
                k = 1 << (v - 24)
                if i + k > n:
                    raise _bad("truncated")
                v = int.from_bytes(bytes(b[i:i + k]), "big")
                i += k
            if major < 2:
                x = -1 - v if major else v
            elif major == 6:
                raise _bad("tag")
            elif v > n - i:  # an item takes a byte at least: no huge allocation from a short frame
                raise _bad("truncated")
            elif major < 4:
                x = bytes(b[i:i + v])
                i += v
                if major == 3:
                    try:
                        x = x.decode()
                    except UnicodeError:
                        raise _bad("not UTF-8")
            elif len(open_) >= MAX_DEPTH:
                raise _bad("too deep")
            else:
                x = [] if major == 4 else {}
                if v:
                    open_.append([x, v, _NO_KEY])
                    continue
        while open_:  # x is the next item of the innermost open container
            c = open_[-1]
            if c[0].__class__ is list:
                c[0].append(x)
            elif c[2] is _NO_KEY:
                if isinstance(x, bool) or not isinstance(x, _KEYS) or x in c[0]:
                    raise _bad("map key")
                c[2] = x
                break  # its value next
            else:
                c[0][c[2]] = x
                c[2] = _NO_KEY
            c[1] -= 1
            if c[1]:
                break
            open_.pop()
            x = c[0]  # complete: an item of the one around it
        else:
            if i != n:
                raise _bad("trailing bytes")
            return x


# -- helix values <-> plain values ----------------------------------------------------------

# the event kind code is the index (Tick=0 .. Custom=7); a built-in topic's is its _key
_EVENTS = (Event.Tick, Event.Shutdown, Event.MemoryPressure, Event.CpuHotplug, Event.ProcessCreated,
           Event.ProcessExited, Event.Interrupt, Event.Custom)
_TOPICS = (EventTopic.TICK, EventTopic.SHUTDOWN, EventTopic.MEMORY_PRESSURE, EventTopic.CPU_HOTPLUG,
           EventTopic.PROCESS, EventTopic.INTERRUPT, EventTopic.ALL)


def event_to_obj(event):
    """[kind code, field, ...] for an Event (Custom data as bytes)."""
    cls = type(event)
    if cls not in _EVENTS:
        raise TypeError("wire: not an Event: " + cls.__name__)
    out = [_EVENTS.index(cls)]  # type: list[Any]
    for f in cls._fields:
        x = getattr(event, f)
        out.append(bytes(x) if f == "data" else x)
    return out


def obj_to_event(obj):
    """The Event from event_to_obj's value; WireError for an unknown kind or bad fields."""
    if not isinstance(obj, list) or not obj or type(obj[0]) is not int or not 0 <= obj[0] < 8:
        raise _bad("event kind")
    cls = _EVENTS[obj[0]]
    args = obj[1:]
    if len(args) != len(cls._fields):
        raise _bad("event fields")
    if obj[0] != 7:  # all ints (CpuHotplug's online a bool)
        for a in args:
            if not isinstance(a, int) and a is not True and a is not False:  # (bool: an int on CPython only)
                raise _bad("event fields")
    try:
        return cls(*args)
    except (TypeError, ValueError) as e:
        raise WireError("wire: event: %s" % e)


def obj_to_topic(obj):
    """The EventTopic from topic_to_obj's value."""
    if type(obj) is int and 0 <= obj < 7:
        return _TOPICS[obj]
    if isinstance(obj, str) and obj:
        return EventTopic.Custom(obj)
    raise _bad("topic")


def obj_to_request(obj, sender):
    """A new Request from `sender` (a ModuleAddress, name or id given locally: the wire
    does not say who sent it) with the received type, payload and priority."""
    if not isinstance(obj, list) or len(obj) != 3:
        raise _bad("request")
    t, p, prio = obj
    if not isinstance(t, str) or not t or not isinstance(p, bytes) or type(prio) is not int or not 0 <= prio <= 3:
        raise _bad("request")
    return Request(sender, t, p).with_priority(prio)


def response_to_obj(resp):
    """[0, data] Success, [1, reason] Rejected, [2, message] Error, [3] NOT_SUPPORTED."""
    c = type(resp)
    if c is Response.Success:
        return [0, bytes(resp.data)]
    if c is Response.Rejected:
        return [1, resp.reason]
    if c is Response.Error:
        return [2, resp.message]
    if resp is Response.NOT_SUPPORTED:
        return [3]
    raise TypeError("wire: not a Response: " + c.__name__)


# -- framing ----------------------------------------------------------------------------------

# CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF), a nibble at a time: entry n is the
# CRC register's change for a top nibble n.
_CRC_T = (0x0000, 0x1021, 0x2042, 0x3063, 0x4084, 0x50A5, 0x60C6, 0x70E7, 0x8108, 0x9129, 0xA14A, 0xB16B,
          0xC18C, 0xD1AD, 0xE1CE, 0xF1EF)


def crc16(data, crc=0xFFFF):
    """CRC-16/CCITT-FALSE of data (crc16(b"123456789") == 0x29B1)."""
    t = _CRC_T
    for b in data:
        crc = ((crc << 4) & 0xFFFF) ^ t[(crc >> 12) ^ (b >> 4)]
        crc = ((crc << 4) & 0xFFFF) ^ t[(crc >> 12) ^ (b & 15)]
    return crc


def frame(payload):
    """b"~" + base64(payload + CRC-16 big-endian) + b"\\n"."""
    c = crc16(payload)
    return b"~" + b2a_base64(bytes(payload) + bytes((c >> 8, c & 255)))[:-1] + b"\n"
