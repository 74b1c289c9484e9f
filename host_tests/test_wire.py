# Tests for helix_ipc.wire: the JSON value codec (the interpreter's json, "~" written as
# \u007e), base64 text for the fields that hold bytes, the helix value conversions and
# the "~" + JSON + 4 hex digits of CRC-16 + "\n" framing (its reading side,
# helix_ipc.link.Link.feed, through a Link whose received messages are recorded), on
# every interpreter.
#
# MicroPython's json.loads is more lenient than CPython's: it accepts "[1 2]", "[1,]",
# "[,1]", "01", '["a":1]', '{"a"}', "{1:2}", '"\x41"' (as "x41"), a raw control
# character in a string, and stops at a NUL ("[1]\x00x" is [1]). Those are not tested as
# errors below; whatever decode() returns from them is still checked by the conversions
# (test_lenient_json_still_meets_the_conversion_checks).
import support
from support import raises

from linkfixture import Deframer

from helix_ipc import Event, EventTopic, MemoryPressureLevel, ModuleAddress, Request, Response
from helix_ipc import remote_out, wire

ALL_BYTES = bytes(range(256))


def _round(v):
    return wire.decode(wire.encode(v))


def _strings():
    # every ASCII character alone and among others, "~" in every position, non-ASCII
    out = [chr(i) for i in range(128)]
    out += ["", "~", "~~", "a~", "~a", "a~b", "~" * 40, "".join(chr(i) for i in range(128)),
            "\u00e9t\u00e9", "\u20ac~\u00fc", "\U0001f600", 'quote " and \\ backslash', "\\u007e",
            "\x01\x02\x03\x04\x05\r\n", "\r\n~\r\n"]
    return out


def test_codec_round_trips_plain_values():
    values = [None, True, False, 0, 1, -1, 23, 24, 255, 256, 65535, 2 ** 31, -(2 ** 31) - 1, 2 ** 63 - 1,
              -(2 ** 63), 2 ** 64, -(2 ** 64) - 1, 2 ** 70, [], [[]], [1, [2, 3], [4, [5, [6]]]],
              [None, True, False, -7, "x", ["y"]]]
    values += _strings()
    values.append(_strings())
    for v in values:
        b = wire.encode(v)
        assert isinstance(b, bytes), (v, b)
        back = wire.decode(b)
        assert back == v and type(back) is type(v), (v, b, back)
        assert wire.decode(b.decode()) == v  # str input too
    assert wire.encode(True) == b"true" and wire.encode(None) == b"null" and wire.encode(-5) == b"-5"
    assert wire.encode((1, (2, "a"))) == wire.encode([1, [2, "a"]])  # a tuple goes as a list
    assert _round((1, (2, "a"))) == [1, [2, "a"]]
    assert wire.decode(b' [1, "a"] \n') == [1, "a"]  # JSON whitespace around a value
    assert wire.decode(b"[1,2]") == [1, 2] and wire.decode(b"[ 1 , 2 ]") == [1, 2]


def test_text_goes_as_raw_utf8_on_both_interpreters():
    # the same bytes from CPython and MicroPython: CPython's json would write a character
    # outside the basic plane as a \ud83d\ude00 pair, which MicroPython's json does not
    # join back (a board would get two surrogate halves); raw UTF-8 every json reads
    for text in ("t\U0001F600", "\u00e9", "\u4e2d\u6587", "a\u2028b"):
        b = wire.encode([text])
        assert b == b'["' + text.encode() + b'"]', (text, b)
        assert wire.decode(b) == [text]
    assert wire.decode(b'["t\xf0\x9f\x98\x80"]') == ["t\U0001F600"]  # what CPython sends, read back
    # a lone surrogate (only a received \ud800 escape makes one): written as it is, no
    # exception in the sender (CPython's str.encode would raise without surrogatepass), and
    # both interpreters' json read it back
    lone = b'["x\xed\xa0\x80"]'
    assert wire.encode(["x\ud800"]) == lone
    assert wire.decode(lone) == ["x\ud800"]


def test_tilde_is_always_escaped_and_decodes_back():
    for s in _strings():
        for v in (s, [s], [1, [s, s], "~"]):
            b = wire.encode(v)
            assert b"~" not in b, (v, b)
            if "~" in s:
                assert b"\\u007e" in b, b
            assert wire.decode(b) == v
    assert wire.encode("~") == b'"\\u007e"'
    assert wire.decode(b'"\\u007e"') == "~" and wire.decode(b'"~"') == "~"  # a raw one decodes too


def test_frames_hold_no_control_keys_cr_or_lf_inside():
    import random

    random.seed(3)
    values = _strings() + [_strings(), ["\x03" * 10, ["\x01", ["\x04\x05\x02"]]]]
    for _ in range(200):  # random strings of random code points (ASCII and beyond)
        n = random.getrandbits(5)
        values.append("".join(chr(random.getrandbits(7) if random.getrandbits(1) else 0xA0 + random.getrandbits(10))
                              for _ in range(n)))
    for v in values:
        f = wire.frame(wire.encode(v))
        assert f[:1] == b"~" and f[-1:] == b"\n", f
        inner = f[1:-1]
        assert b"~" not in inner and b"\n" not in inner and b"\r" not in inner, (v, f)
        for c in inner:
            assert c >= 32, (v, f)  # no Ctrl-A..E, Ctrl-C or any other control byte
        d = Deframer(4096)
        assert d.feed(f) == [wire.encode(v)]
        assert d.frames == 1 and d.errors() == 0
        assert wire.decode(d.feed(f)[0]) == v


def test_decode_rejects_malformed_truncated_trailing_and_over_deep_input():
    bad = [
        b"", b" ", b"\x00", b"\xff", b"[", b"]", b"{", b"}", b"[1,2", b'"abc', b'"a\\"', b"tru", b"nul", b"nan",
        b"+1", b"-", b"--1", b"'a'", b'"\\u12"', b'"\xff"', b'"\xc3"',  # malformed / truncated / not UTF-8
        b"[1]x", b"[1]]", b"[1] 2", b"1 2", b"true false", b"[true]false", b'"a""b"', b"1-",  # trailing
        b"[" * 5000, b"[" * 5000 + b"1",  # over-deep (CPython: RecursionError) and truncated
        wire.encode([1, "a~b", [2]])[:-1], wire.encode("~")[:-2],  # cut encode() output
    ]
    for b in bad:
        e = raises(wire.WireError, wire.decode, b)
        assert isinstance(e, ValueError), (b, e)
    # closed but deep nesting: CPython's recursion limit makes it a WireError; MicroPython's
    # json builds it without recursion (a board's max_frame bounds it: 256 levels in 512 B)
    deep = b"[" * 5000 + b"]" * 5000
    try:
        v = wire.decode(deep)
    except wire.WireError:
        v = None
    if support.CPYTHON:
        assert v is None
    else:
        n = 0
        while v:
            v = v[0]
            n += 1
        assert n == 4999  # (the innermost one is the empty list)


def _plain(v):
    # only what json builds: None, bool, int, float, str, list, dict (of those)
    if v is None or type(v) in (bool, int, float, str):
        return True
    if type(v) is list:
        return all(_plain(x) for x in v)
    return type(v) is dict and all(type(k) is str or support.MICROPYTHON for k in v) and all(_plain(x) for x in v.values())


def test_decode_random_text_and_bytes_only_wire_errors():
    import random

    random.seed(7)
    rand = random.getrandbits
    tokens = [b"[", b"]", b",", b"1", b"-2", b"0", b".5", b"e3", b'"a"', b'"~"', b'"\\u007e"', b"true", b"null", b" ",
              b"{", b"}", b":", b'"', b"\\", b"\x00", b"\xff", b"~", b"\n"]
    ok = bad = 0
    for i in range(3000):
        if i & 1:
            b = bytes(rand(8) for _ in range(rand(5)))
        else:
            b = b"".join(tokens[rand(5) % len(tokens)] for _ in range(1 + rand(3)))
        try:
            v = wire.decode(b)
        except wire.WireError:
            bad += 1
            continue
        ok += 1
        assert _plain(v), (b, v)
    assert ok > 100 and bad > 1000, (ok, bad)


def test_lenient_json_still_meets_the_conversion_checks():
    # what MicroPython's json accepts beyond JSON is still only plain values, checked by
    # the conversions like any other (none of these is a request)
    texts = [b"[1 2]", b"[1,]", b"[,1]", b"01", b'["a":1]', b'{"a"}', b"{1:2}", b'"\\x41"', b"[1]\x00x"]
    for t in texts:
        try:
            v = wire.decode(t)
        except wire.WireError:
            continue
        assert support.MICROPYTHON, t  # CPython's json rejects every one of them
        assert _plain(v), (t, v)
        raises(wire.WireError, wire.obj_to_request, v, "peer")


def test_b64_fields():
    for data in (b"", b"\x00", b"ab", b"abc", ALL_BYTES, ALL_BYTES * 3 + b"x"):
        s = wire.b64(data)
        assert isinstance(s, str) and "\n" not in s and "~" not in s
        assert wire.unb64(s) == data
        assert wire.b64(bytearray(data)) == s and wire.b64(memoryview(data)) == s
    assert wire.b64(b"\x01\x02") == "AQI=" and wire.b64(b"") == ""
    for s in ("a", "ab", "abc", "YQ", "YQ=", "a===", "ab=c", "AQI"):  # bad padding / length
        raises(wire.WireError, wire.unb64, s)
    for x in (None, 5, True, b"YQ==", bytearray(b"YQ=="), ["YQ=="], 1.5):  # not text
        raises(wire.WireError, wire.unb64, x)


def test_events_round_trip():
    events = [
        Event.Tick(123456789012, 42), Event.Tick(2 ** 70, 0), Event.Shutdown(),
        Event.MemoryPressure(MemoryPressureLevel.LOW, 1000), Event.CpuHotplug(1, True), Event.CpuHotplug(0, False),
        Event.ProcessCreated(5, 1), Event.ProcessExited(5, -3), Event.Interrupt(14, 0),
        Event.Custom("temp", b"\x01\x02"), Event.Custom("x"), Event.Custom("all", ALL_BYTES),
        Event.Custom("a~b", bytearray(b"\x7e\n\r")), Event.Custom("\u00e9", memoryview(b"~~~")),
    ]
    for ev in events:
        o = wire.event_to_obj(ev)
        b = wire.encode(o)
        back = wire.obj_to_event(wire.decode(b))
        assert back == ev or bytes(back.data) == bytes(ev.data), (ev, back)
        assert type(back) is type(ev)
        if isinstance(ev, Event.Custom):
            assert type(back.data) is bytes and back.data == bytes(ev.data)
    assert wire.event_to_obj(Event.Tick(1, 2)) == [0, 1, 2]
    assert wire.event_to_obj(Event.Custom("t", b"\x01\x02")) == [7, "t", "AQI="]
    assert wire.event_to_obj(Event.Shutdown()) == [1]
    assert wire.obj_to_event([3, 1, False]).online is False
    e = wire.obj_to_event([7, "n", "ZA=="])
    assert e.topic == EventTopic.Custom("n") and e.data == b"d"
    raises(TypeError, wire.event_to_obj, "tick")


def test_an_event_field_of_another_type_is_a_type_error_not_sent():
    # the event classes do not check their int fields; MicroPython's json would write an
    # object as <object> and bytes as a string: event_to_obj refuses them on both
    for ev in (Event.Tick(object(), 1), Event.Tick(b"ab", 1), Event.Tick(1.5, 1), Event.Tick("5", 1),
               Event.MemoryPressure(1, bytearray(b"x")), Event.ProcessExited(5, None), Event.Interrupt([1], 0)):
        raises(TypeError, wire.event_to_obj, ev)
    assert wire.event_to_obj(Event.CpuHotplug(1, True)) == [3, 1, True]


def test_bad_events_are_wire_errors():
    for o in ([], [8], [-1], ["Tick", 1, 2], [0, 1], [0, 1, 2, 3], [0, "1", 2], [0, None, 2], [0, 1.5, 2],
              [0, [1], 2], [0.0, 1, 2], [2, 9, 100], [7, "", ""], [7, "n", "a"], [7, "n", 5], [7, "n", None],
              [7, 3, ""], [7, "n"], [7, "n", "", ""], "x", None, 5, {"0": 1}, {}, [True], [1, 1], [False, 1, 2]):
        raises(wire.WireError, wire.obj_to_event, o)


def test_topics_round_trip():
    for t in (EventTopic.TICK, EventTopic.SHUTDOWN, EventTopic.MEMORY_PRESSURE, EventTopic.CPU_HOTPLUG,
              EventTopic.PROCESS, EventTopic.INTERRUPT, EventTopic.ALL, EventTopic.Custom("temp"),
              EventTopic.Custom("a~b")):
        back = wire.obj_to_topic(wire.decode(wire.encode(remote_out.topic_to_obj(t))))
        assert back is t or (isinstance(t._key, str) and back == t), (t, back)
    assert wire.obj_to_topic(0) is EventTopic.TICK
    assert wire.obj_to_topic(6) is EventTopic.ALL
    for o in (7, -1, "", None, [0], True, False, 1.0, {}):
        raises(wire.WireError, wire.obj_to_topic, o)
    raises(TypeError, remote_out.topic_to_obj, "TICK")


def test_requests_and_responses_round_trip():
    for payload in (b"", b"\x00abc", ALL_BYTES, b"~" * 10):
        r = Request("host", "get~x", payload).with_priority(3)
        o = wire.decode(wire.encode(remote_out.request_to_obj(r)))
        assert o == ["get~x", wire.b64(payload), 3]
        back = wire.obj_to_request(o, ModuleAddress.Name("peer"))
        assert back.request_type == "get~x" and back.payload == payload and back.priority == 3
        assert back.sender == ModuleAddress.Name("peer")
        assert back.id != r.id  # a local request of its own
    assert remote_out.request_to_obj(Request("h", "t", bytearray(b"\x01\x02"))) == ["t", "AQI=", 1]
    for o in (["", "", 1], ["t", "a", 1], ["t", 5, 1], ["t", None, 1], ["t", "", 4], ["t", "", -1], ["t", ""],
              ["t", "", True], ["t", "", 1.0], ["t", "", None], 5, None, "t", {"t": 1}, [3, "", 1],
              ["t", "", 1, 0], [["t"], "", 1]):
        raises(wire.WireError, wire.obj_to_request, o, "peer")
    for resp in (Response.Success(b"data"), Response.Success(ALL_BYTES), Response.ok(), Response.Rejected("no~"),
                 Response.Error("bad \u00e9"), Response.NOT_SUPPORTED):
        o = wire.response_to_obj(resp)
        back = remote_out.obj_to_response(wire.decode(wire.encode(o)))
        assert back == resp and type(back) is type(resp)
    assert wire.response_to_obj(Response.Success(b"\x01\x02")) == [0, "AQI="]
    assert wire.response_to_obj(Response.Rejected("r")) == [1, "r"]
    assert remote_out.obj_to_response([3]) is Response.NOT_SUPPORTED
    assert remote_out.obj_to_response([0, ""]) == Response.Success(b"")
    for o in ([], [0], [0, "a"], [0, "YQ="], [0, 5], [0, None], [1, 5], [1, None], [2, 3], [2, ["m"]], [4, ""],
              [3, 1], None, "x", 3, [0, "", 1], [True, ""], [1.0, "r"], {"0": ""}):
        raises(wire.WireError, remote_out.obj_to_response, o)
    raises(TypeError, wire.response_to_obj, b"ok")


def test_crc16_ccitt_false():
    assert wire.crc16(b"123456789") == 0x29B1
    assert wire.crc16(b"") == 0xFFFF
    assert wire.crc16(bytearray(b"123456789")) == wire.crc16(memoryview(b"0123456789")[1:]) == 0x29B1
    assert wire.crc16(b"56789", wire.crc16(b"1234")) == 0x29B1  # continued from a partial CRC


def test_frame_format_is_tilde_payload_lowercase_hex_crc_newline():
    assert wire.frame(b"123456789") == b"~12345678929b1\n"
    assert wire.frame(b"") == b"~ffff\n"
    p = wire.encode([3, [0, 12345, 678]])
    assert wire.frame(p) == b"~" + p + (b"%04x" % wire.crc16(p)) + b"\n"
    d = Deframer(64)
    assert d.feed(b"~12345678929b1\n") == [b"123456789"]
    assert d.feed(b"~12345678929B1\n") == [] and d.crc_errors == 1  # the CRC is lowercase hex
    assert d.feed(b"~123456789 29b1\n") == [] and d.crc_errors == 2  # covers every payload byte
    assert d.feed(b"~x29b1\n") == [] and d.crc_errors == 3
    assert d.frames == 1


def test_deframer_split_noise_and_crlf():
    payloads = [wire.encode([i, "x" * i]) for i in range(1, 30)]
    head = b"MicroPython v1 >>> print(1)\r\n1\r\n"
    stream = head
    for p in payloads:
        stream += wire.frame(p).replace(b"\n", b"\r\n") + b"text between\r\n"
    for step in (1, 2, 5, 7, 64, len(stream)):
        d = Deframer(64)
        got = []
        for i in range(0, len(stream), step):
            got += d.feed(stream[i:i + step])
        assert got == payloads, step
        assert d.frames == 29 and d.errors() == 0
        assert d.noise == len(head) + 29 * len(b"text between\r\n")
    d = Deframer(64)  # frames back to back, no line end between: all found too
    assert d.feed(b"".join(wire.frame(p) for p in payloads)) == payloads


def test_deframer_drops_and_counts_bad_frames_and_resyncs():
    good = wire.frame(b'"good"')
    d = Deframer(16)
    f = bytearray(wire.frame(b'"payload"'))
    f[3] = ord("A") if f[3] != ord("A") else ord("B")  # a corrupted byte
    assert d.feed(bytes(f)) == [] and d.crc_errors == 1
    f = bytearray(wire.frame(b'"payload"'))
    f[-2] = ord("0") if f[-2] != ord("0") else ord("1")  # a corrupted CRC digit
    assert d.feed(bytes(f)) == [] and d.crc_errors == 2
    assert d.feed(good[:5] + good) == [b'"good"'] and d.malformed == 1  # cut short, then a full one
    assert d.feed(good[:-1] + b"noise\n" + good) == [b'"good"'] and d.crc_errors == 3  # lost its "\n"
    assert d.feed(wire.frame(b"x" * 18)) == [] and d.oversize == 1  # 18 > max_frame
    assert d.feed(wire.frame(b"x" * 18).replace(b"\n", b"\r\n")) == [] and d.oversize == 2
    assert d.feed(good) == [b'"good"']
    assert d.feed(b"~\n~AA\n~!!!!\n~ffff\n") == [] and d.malformed == 5  # shorter than 5 bytes
    assert d.feed(b"~\r\n") == [] and d.malformed == 6
    assert d.feed(good) == [b'"good"'] and d.frames == 4
    for end in (b"\n", b"\r\n"):  # one byte over max_frame: oversize, with or without the "\r"
        d1 = Deframer(16)
        assert d1.feed(wire.frame(b"x" * 17).replace(b"\n", end)) == [] and d1.oversize == 1, end
    for end in (b"\n", b"\r\n"):  # exactly max_frame: fine
        d2 = Deframer(16)
        assert d2.feed(wire.frame(b"x" * 16).replace(b"\n", end)) == [b"x" * 16] and d2.errors() == 0
    d3 = Deframer(16)  # an oversize frame split over many feeds: counted once, then resync
    big = wire.frame(b"x" * 100)
    for i in range(0, len(big), 7):
        assert d3.feed(big[i:i + 7]) == []
    assert d3.oversize == 1 and d3.feed(good) == [b'"good"']


def test_deframer_random_garbage_never_raises():
    import random

    random.seed(11)
    d = Deframer(64)
    good = wire.frame(b'"ok"')
    got = 0
    for _ in range(300):
        junk = bytes(random.getrandbits(8) for _ in range(random.getrandbits(6)))
        got += len(d.feed(junk))
        got += d.feed(b"\n" + good).count(b'"ok"')
    assert got >= 300  # every good frame after a line break is found
    assert d.frames == got


def test_a_tick_event_message_costs_little_to_encode_or_decode():
    # json is C code: per message only its output and the decoded values are allocated.
    # Measured (support.frame_alloc, unix port 64-bit, and board mode alike): a tick event
    # message (20 B of JSON) 85 B to encode, 328 B to decode, 131 B to frame (275 B while the CRC
    # loop had a heap frame of its own); the CBOR codec in Python took 659 / 646 B. Bounds: x1.5-2.
    msg = [3, wire.event_to_obj(Event.Tick(12345, 678))]
    b = wire.encode(msg)
    assert b == b"[3, [0, 12345, 678]]" and wire.decode(b) == msg
    assert support.frame_alloc(wire.encode, msg) < 160
    assert support.frame_alloc(wire.decode, b) < 512
    assert support.frame_alloc(wire.frame, b) < 448
    assert support.frame_alloc(wire.crc16, b) == 0  # its frame fits the C stack (was a ~145 B heap frame per call)
