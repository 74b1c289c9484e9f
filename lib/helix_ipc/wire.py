# helix_ipc.wire: the bytes that cross between nodes (the serial link, the MQTT bridge).
#
# - Values are JSON text (RFC 8259), through the interpreter's own json module: C code on
#   MicroPython, so the codec costs a board no heap for code (a codec in Python cost 3 KB
#   of the link's 8 KB; docs/link.md, "Why JSON"). Only plain values cross: None, bool,
#   int, str and lists; bytes travel as base64 text in the fields that hold bytes.
#   decode() builds only those (json builds nothing else; its floats and dicts fail the
#   checks of the conversions below): nothing received is ever evaluated, imported or
#   looked up by name. Anything malformed is a WireError (a ValueError).
# - Conversions between helix values (Event, EventTopic, Request, Response) and such plain
#   values, checking every field of what was received (table-driven: the kind code of an
#   event or a built-in topic is its index in _EVENTS / _TOPICS). Those only a requester
#   needs (topic_to_obj, request_to_obj, obj_to_response) are helix_ipc.remote_out's.
# - Framing for byte streams (the serial link): "~" + JSON text + 4 hex digits of its
#   CRC-16 + "\n" (crc16, frame; the reading side is helix_ipc.link's). encode() writes
#   "~" as \u007e and json escapes every control character, so a frame holds no "~" but
#   its first byte, no "\r", no "\n" but its last, and no REPL control key (Ctrl-A..E,
#   Ctrl-C): frames share a board's REPL line (see docs/link.md).
# Kept small: a board imports it to serve a link.
#
# Contexts: task context (allocates); never a hard IRQ. Pure functions.

from binascii import a2b_base64, b2a_base64
from json import loads

from ._compat import json_text
from .events import Event, EventTopic
from .messages import Request, Response


class WireError(ValueError):
    """Malformed, truncated or otherwise unacceptable wire data."""


# -- the value codec --------------------------------------------------------------------------

def encode(x):
    """The JSON text of x as bytes; x holds only None, bool, int, str, list and tuple
    (the conversions below make such values; bytes must be b64() text)."""
    # (surrogatepass: a lone surrogate, which only a received \ud800 escape makes on CPython,
    # goes out as it is (both interpreters' json read it back) instead of raising here)
    return json_text(x).replace("~", "\\u007e").encode("utf-8", "surrogatepass")


def decode(b):
    """The value in JSON text b (bytes or str); WireError for anything else."""
    try:
        return loads(b)
    except (ValueError, RuntimeError) as e:  # (CPython: RecursionError for deep nesting)
        raise WireError(e)


def b64(data):
    """Bytes-like data as base64 text (for a field that holds bytes)."""
    return b2a_base64(data)[:-1].decode()


def unb64(s):
    """The bytes of b64()'s text; WireError for anything else."""
    if isinstance(s, str):
        try:
            return a2b_base64(s)
        except ValueError:  # binascii.Error
            pass
    raise WireError("base64")


# -- helix values <-> plain values ----------------------------------------------------------

# the event kind code is the index (Tick=0 .. Custom=7); a built-in topic's is its _key
_EVENTS = (Event.Tick, Event.Shutdown, Event.MemoryPressure, Event.CpuHotplug, Event.ProcessCreated,
           Event.ProcessExited, Event.Interrupt, Event.Custom)
_TOPICS = (EventTopic.TICK, EventTopic.SHUTDOWN, EventTopic.MEMORY_PRESSURE, EventTopic.CPU_HOTPLUG,
           EventTopic.PROCESS, EventTopic.INTERRUPT, EventTopic.ALL)


def event_to_obj(event):
    """[kind code, field, ...] for an Event (Custom data as base64 text); TypeError for
    a field of another type than the event's (ints; CpuHotplug's online a bool)."""
    cls = type(event)
    if cls not in _EVENTS:
        raise TypeError("wire: not an Event: " + cls.__name__)
    out = [_EVENTS.index(cls)]
    for f in cls._fields:
        x = getattr(event, f)
        if f == "data":
            x = b64(x)
        elif f != "name" and type(x) is not int and x is not True and x is not False:
            raise TypeError("wire: %s.%s is not an int" % (cls.__name__, f))  # (json would write it as it is)
        out.append(x)
    return out


def obj_to_event(obj):
    """The Event from event_to_obj's value; WireError for an unknown kind or bad fields."""
    if not isinstance(obj, list) or not obj or type(obj[0]) is not int or not 0 <= obj[0] < 8:
        raise WireError("event kind")
    cls = _EVENTS[obj[0]]
    args = obj[1:]
    if len(args) != len(cls._fields):
        raise WireError("event fields")
    if obj[0] == 7:
        args[1] = unb64(args[1])
    else:  # all ints (CpuHotplug's online a bool)
        for a in args:
            if type(a) is not int and a is not True and a is not False:
                raise WireError("event fields")
    try:
        return cls(*args)
    except (TypeError, ValueError) as e:
        raise WireError(e)


def obj_to_topic(obj):
    """The EventTopic from topic_to_obj's value."""
    if type(obj) is int and 0 <= obj < 7:
        return _TOPICS[obj]
    if isinstance(obj, str) and obj:
        return EventTopic.Custom(obj)
    raise WireError("topic")


def obj_to_request(obj, sender):
    """A new Request from `sender` (a ModuleAddress, name or id given locally: the wire
    does not say who sent it) with the received type, payload and priority."""
    if not isinstance(obj, list) or len(obj) != 3:
        raise WireError("request")
    t, p, prio = obj
    if not isinstance(t, str) or not t or type(prio) is not int or not 0 <= prio <= 3:
        raise WireError("request")
    return Request(sender, t, unb64(p)).with_priority(prio)


def response_to_obj(resp):
    """[0, data] Success (data as base64 text), [1, reason] Rejected, [2, message] Error,
    [3] NOT_SUPPORTED."""
    c = type(resp)
    if c is Response.Success:
        return [0, b64(resp.data)]
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
    # (the table read as a global and the lookup first: 11 words of frame state, so the
    # frame stays on the C stack; with a local for the table it was 13, a heap frame of
    # ~145 B on every call, twice per frame; ~10% slower per byte, measured on the unix port)
    for b in data:
        crc = _CRC_T[crc >> 12 ^ b >> 4] ^ crc << 4 & 0xFFFF
        crc = _CRC_T[crc >> 12 ^ b & 15] ^ crc << 4 & 0xFFFF
    return crc


def frame(payload):
    """b"~" + payload (encode()'s bytes) + its CRC-16 as 4 hex digits + b"\\n"."""
    return b"~%s%04x\n" % (payload, crc16(payload))
