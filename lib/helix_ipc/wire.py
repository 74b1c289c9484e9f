# helix_ipc.wire: the bytes that cross between nodes (the serial link, the MQTT bridge).
#
# - A value codec, a strict subset of CBOR (RFC 8949): None, bool, int (-2**64..2**64-1),
#   bytes, str, list/tuple (decoded as list), dict with int or str keys; definite lengths
#   only, nesting at most MAX_DEPTH containers. No floats, tags or indefinite lengths.
#   decode() only builds those plain values: nothing received is ever evaluated, imported
#   or looked up by name. Anything else is a WireError (a ValueError).
# - Conversions between helix values (Event, EventTopic, Request, Response) and such plain
#   values, checking every field of what was received.
# - Framing for byte streams (the serial link): "~" + base64(payload + CRC-16) + "\n".
#   A frame holds only printable ASCII and "\n": no byte of it is a REPL control key
#   (Ctrl-A..E, Ctrl-C) or "\r", so frames can share a board's REPL line (see docs/link.md).
#
# Contexts: task context (allocates); never a hard IRQ. Pure functions, plus Deframer,
# whose instances belong to one reader.

from binascii import a2b_base64, b2a_base64

from ._compat import const
from .events import Event, EventTopic
from .messages import Request, Response

MAX_DEPTH = const(8)

if False:  # names for the type comments only: mypy reads this, MicroPython compiles it away
    from typing import Any  # noqa: F401


class WireError(ValueError):
    """Malformed, truncated, over-deep or otherwise unacceptable wire data."""


# -- the value codec (CBOR subset) --------------------------------------------------------

def encode(obj):
    """The CBOR bytes of obj. TypeError for a type outside the subset, ValueError for an
    int out of range or nesting deeper than MAX_DEPTH."""
    out = bytearray()
    _enc(out, obj, 0)
    return bytes(out)


def _head(out, major, n):
    if n < 24:
        out.append(major | n)
    elif n < 0x100:
        out.append(major | 24)
        out.append(n)
    elif n < 0x10000:
        out.append(major | 25)
        out.extend(n.to_bytes(2, "big"))
    elif n < 0x100000000:
        out.append(major | 26)
        out.extend(n.to_bytes(4, "big"))
    elif n < 0x10000000000000000:
        out.append(major | 27)
        out.extend(n.to_bytes(8, "big"))
    else:
        raise ValueError("wire: int out of range (-2**64..2**64-1)")


def _enc(out, x, depth):
    if x is None:
        out.append(0xF6)
    elif x is True:
        out.append(0xF5)
    elif x is False:
        out.append(0xF4)
    elif isinstance(x, int):
        if x >= 0:
            _head(out, 0, x)
        else:
            _head(out, 0x20, -1 - x)
    elif isinstance(x, (bytes, bytearray, memoryview)):
        _head(out, 0x40, len(x))
        out.extend(x)
    elif isinstance(x, str):
        b = x.encode()
        _head(out, 0x60, len(b))
        out.extend(b)
    elif isinstance(x, (list, tuple, dict)):
        if depth >= MAX_DEPTH:
            raise ValueError("wire: nesting deeper than %d" % MAX_DEPTH)
        depth += 1
        if isinstance(x, dict):
            _head(out, 0xA0, len(x))
            for k, v in x.items():
                if isinstance(k, bool) or not isinstance(k, (int, str)):
                    raise TypeError("wire: dict keys must be int or str, got %s" % type(k).__name__)
                _enc(out, k, depth)
                _enc(out, v, depth)
        else:
            _head(out, 0x80, len(x))
            for v in x:
                _enc(out, v, depth)
    else:
        raise TypeError("wire: cannot encode %s" % type(x).__name__)


def decode(buf):
    """The value encoded in buf (bytes-like). WireError for malformed, truncated,
    trailing or over-deep input."""
    obj, i = _dec(buf, 0, 0)
    if i != len(buf):
        raise WireError("wire: %d trailing byte(s)" % (len(buf) - i))
    return obj


def _dec(b, i, depth):
    # (value, index after it)
    n = len(b)
    if i >= n:
        raise WireError("wire: truncated")
    ib = b[i]
    i += 1
    major = ib >> 5
    v = ib & 31
    if major == 7:
        if v == 20:
            return False, i
        if v == 21:
            return True, i
        if v == 22:
            return None, i
        raise WireError("wire: unsupported simple value or float 0x%02x" % ib)
    if v >= 24:
        if v > 27:
            raise WireError("wire: indefinite or reserved length 0x%02x" % ib)
        k = 1 << (v - 24)
        if i + k > n:
            raise WireError("wire: truncated")
        v = int.from_bytes(bytes(b[i:i + k]), "big")
        i += k
    if major == 0:
        return v, i
    if major == 1:
        return -1 - v, i
    if major == 2 or major == 3:
        if v > n - i:
            raise WireError("wire: truncated")
        s = bytes(b[i:i + v])
        if major == 2:
            return s, i + v
        try:
            return s.decode(), i + v
        except UnicodeError:
            raise WireError("wire: text is not UTF-8")
    if major == 6:
        raise WireError("wire: tags are not supported")
    if depth >= MAX_DEPTH:
        raise WireError("wire: nesting deeper than %d" % MAX_DEPTH)
    if v > n - i:  # each item takes a byte at least: no huge allocation from a short frame
        raise WireError("wire: truncated")
    if major == 4:
        out = []
        while v:
            x, i = _dec(b, i, depth + 1)
            out.append(x)
            v -= 1
        return out, i
    d = {}
    while v:
        k, i = _dec(b, i, depth + 1)
        if isinstance(k, bool) or not isinstance(k, (int, str)):
            raise WireError("wire: map keys must be int or str")
        if k in d:
            raise WireError("wire: duplicate map key")
        d[k], i = _dec(b, i, depth + 1)
        v -= 1
    return d, i


# -- helix values <-> plain values ----------------------------------------------------------

_KINDS = ("Tick", "Shutdown", "MemoryPressure", "CpuHotplug", "ProcessCreated", "ProcessExited",
          "Interrupt", "Custom")  # the event kind code is the index
_TOPICS = ("TICK", "SHUTDOWN", "MEMORY_PRESSURE", "CPU_HOTPLUG", "PROCESS", "INTERRUPT", "ALL")


def _list(obj, n, what):
    if not isinstance(obj, list) or len(obj) < 1 or (n is not None and len(obj) != n):
        raise WireError("wire: bad %s" % what)
    return obj


def event_to_obj(event):
    """[kind code, field, ...] for an Event (Custom data as bytes)."""
    cls = type(event)
    for code in range(len(_KINDS)):
        if getattr(Event, _KINDS[code]) is cls:
            out = [code]  # type: list[Any]
            for f in cls._fields:
                x = getattr(event, f)
                out.append(bytes(x) if f == "data" else x)
            return out
    raise TypeError("wire: not an Event: %s" % cls.__name__)


def obj_to_event(obj):
    """The Event from event_to_obj's value; WireError for an unknown kind or bad fields."""
    _list(obj, None, "event")
    code = obj[0]
    if type(code) is not int or not 0 <= code < len(_KINDS):
        raise WireError("wire: unknown event kind %r" % (code,))
    cls = getattr(Event, _KINDS[code])
    args = obj[1:]
    if len(args) != len(cls._fields):
        raise WireError("wire: event %s needs %d fields" % (_KINDS[code], len(cls._fields)))
    if code != 7:  # all ints (CpuHotplug's online a bool)
        for a in args:
            if not isinstance(a, int) and a is not True and a is not False:
                raise WireError("wire: event %s fields must be ints" % _KINDS[code])
    try:
        return cls(*args)
    except (TypeError, ValueError) as e:
        raise WireError("wire: bad event %s: %s" % (_KINDS[code], e))


def topic_to_obj(topic):
    """A built-in topic as its small int, a custom one as its name (str)."""
    if not isinstance(topic, EventTopic):
        raise TypeError("wire: not an EventTopic: %s" % type(topic).__name__)
    return topic._key


def obj_to_topic(obj):
    """The EventTopic from topic_to_obj's value."""
    if type(obj) is int and 0 <= obj < len(_TOPICS):
        return getattr(EventTopic, _TOPICS[obj])
    if isinstance(obj, str) and obj:
        return EventTopic.Custom(obj)
    raise WireError("wire: bad topic %r" % (obj,))


def request_to_obj(req):
    """[request_type, payload, priority]."""
    return [req.request_type, bytes(req.payload), req.priority]


def obj_to_request(obj, sender):
    """A new Request from `sender` (a ModuleAddress, name or id given locally: the wire
    does not say who sent it) with the received type, payload and priority."""
    _list(obj, 3, "request")
    t, p, prio = obj
    if not isinstance(t, str) or not t or not isinstance(p, bytes) or type(prio) is not int or not 0 <= prio <= 3:
        raise WireError("wire: bad request fields")
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
    raise TypeError("wire: not a Response: %s" % c.__name__)


def obj_to_response(obj):
    """The Response from response_to_obj's value."""
    _list(obj, None, "response")
    code = obj[0]
    if code == 3 and len(obj) == 1:
        return Response.NOT_SUPPORTED
    if len(obj) == 2:
        v = obj[1]
        if code == 0 and isinstance(v, bytes):
            return Response.Success(v)
        if code == 1 and isinstance(v, str):
            return Response.Rejected(v)
        if code == 2 and isinstance(v, str):
            return Response.Error(v)
    raise WireError("wire: bad response")


# -- framing ----------------------------------------------------------------------------------

# CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF), a nibble at a time: a 16-entry table.
def _crc_table():
    t = []
    for n in range(16):
        c = n << 12
        for _ in range(4):
            c = ((c << 1) ^ 0x1021) & 0xFFFF if c & 0x8000 else (c << 1) & 0xFFFF
        t.append(c)
    return tuple(t)


_CRC_T = _crc_table()


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


class Deframer:
    """Finds frames in a byte stream that may also carry other text (a REPL's output).

    `feed(data) -> [payload, ...]`: the payloads of the good frames completed by data.
    Bytes outside frames are counted in `noise`; a frame that is cut by a new "~" (bytes
    were lost), is not base64, is shorter than its CRC or fails it, or grows beyond
    `max_frame` payload bytes is dropped and counted (`malformed`, `crc_errors`,
    `oversize`); reading resyncs at the next "~". `frames` counts good frames."""

    def __init__(self, max_frame=512):
        self.max_frame = max_frame
        self._limit = (max_frame + 2 + 2) // 3 * 4 + 1  # base64 of payload + CRC, and a "\r"
        self._buf = bytearray()
        self._in = False
        self.frames = 0
        self.crc_errors = 0
        self.malformed = 0
        self.oversize = 0
        self.noise = 0

    def feed(self, data):
        out = []
        buf = self._buf
        i = 0
        n = len(data)
        while i < n:
            if not self._in:
                j = data.find(b"~", i)
                if j < 0:
                    self.noise += n - i
                    break
                self.noise += j - i
                i = j + 1
                self._in = True
                buf[:] = b""
                continue
            j = data.find(b"\n", i)
            k = data.find(b"~", i)
            if k >= 0 and (j < 0 or k < j):  # a new frame starts: this one was cut short
                self.malformed += 1
                i = k + 1
                buf[:] = b""
                continue
            end = n if j < 0 else j
            if len(buf) + end - i > self._limit:
                self.oversize += 1
                self._in = False
                i = end
                continue
            buf.extend(data[i:end])
            if j < 0:
                break
            i = j + 1
            self._in = False
            p = self._check(buf)
            if p is not None:
                out.append(p)
        return out

    def _check(self, buf):
        if buf and buf[-1] == 13:  # "\r" from a board's cooked output ("\n" -> "\r\n")
            buf[-1:] = b""
        try:
            b = a2b_base64(buf)
        except ValueError:  # binascii.Error
            b = b""
        if len(b) < 2:
            self.malformed += 1
            return None
        if crc16(memoryview(b)[:-2]) != (b[-2] << 8 | b[-1]):
            self.crc_errors += 1
            return None
        self.frames += 1
        return b[:-2]

    def errors(self):
        """Frames dropped: malformed + crc_errors + oversize."""
        return self.malformed + self.crc_errors + self.oversize
