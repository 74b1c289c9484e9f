# Tests for helix_ipc.wire: the CBOR-subset codec, the helix value conversions and the
# "~base64(payload+CRC16)\n" framing (its reading side, helix_ipc.link.Link.feed, through
# a Link whose received messages are recorded), on every interpreter.
import support
from support import raises

from linkfixture import Deframer

from helix_ipc import Event, EventTopic, MemoryPressureLevel, ModuleAddress, Request, Response
from helix_ipc import remote_out, wire


def _round(v):
    return wire.decode(wire.encode(v))


def test_codec_matches_rfc8949_vectors():
    # Appendix A of RFC 8949 (the values of the subset)
    vectors = [
        (0, "00"), (1, "01"), (10, "0a"), (23, "17"), (24, "1818"), (25, "1819"), (100, "1864"),
        (1000, "1903e8"), (1000000, "1a000f4240"), (1000000000000, "1b000000e8d4a51000"),
        (18446744073709551615, "1bffffffffffffffff"), (-18446744073709551616, "3bffffffffffffffff"),
        (-1, "20"), (-10, "29"), (-100, "3863"), (-1000, "3903e7"),
        (False, "f4"), (True, "f5"), (None, "f6"), (b"", "40"), (b"\x01\x02\x03\x04", "4401020304"),
        ("", "60"), ("a", "6161"), ("IETF", "6449455446"), ("\u00fc", "62c3bc"),
        ([], "80"), ([1, 2, 3], "83010203"), ([1, [2, 3], [4, 5]], "8301820203820405"),
        ({}, "a0"), ({1: 2, 3: 4}, "a201020304"), ({"a": 1, "b": [2, 3]}, "a26161016162820203"),
    ]
    import binascii

    for value, hexed in vectors:
        got = binascii.hexlify(wire.encode(value)).decode()
        if isinstance(value, dict) and len(value) > 1:  # MicroPython's dict order is its own
            assert wire.decode(wire.encode(value)) == value and len(got) == len(hexed)
        else:
            assert got == hexed, (value, got, hexed)
        assert wire.decode(binascii.unhexlify(hexed)) == value, value
    assert wire.decode(wire.encode((1, 2))) == [1, 2]  # a tuple goes as an array
    assert wire.encode(bytearray(b"ab")) == wire.encode(b"ab") == wire.encode(memoryview(b"ab"))


def test_codec_int_range_and_types():
    for v in (2 ** 63 - 1, -(2 ** 63), 2 ** 31, -(2 ** 31) - 1, 2 ** 64 - 1, -(2 ** 64)):
        assert _round(v) == v
    raises(ValueError, wire.encode, 2 ** 64)
    raises(ValueError, wire.encode, -(2 ** 64) - 1)
    raises(TypeError, wire.encode, 1.5)
    raises(TypeError, wire.encode, object())
    raises(TypeError, wire.encode, {1.0: 1})
    raises(TypeError, wire.encode, {(1,): 1})
    raises(TypeError, wire.encode, {True: 1})
    raises(TypeError, wire.encode, [1, {2, 3}])
    assert _round({"x": [None, True, b"\x00\xff", "\u00e9"]}) == {"x": [None, True, b"\x00\xff", "\u00e9"]}


def test_codec_depth_limit():
    v = 1
    for _ in range(wire.MAX_DEPTH):
        v = [v]
    assert _round(v) == v  # 8 containers deep: fine
    raises(ValueError, wire.encode, [v])
    raises(ValueError, wire.encode, {"a": v})
    deep = b"\x81" * 9 + b"\x01"
    e = raises(wire.WireError, wire.decode, deep)
    assert "deep" in str(e)
    assert isinstance(e, ValueError)


def test_decode_rejects_malformed_input():
    bad = [
        b"", b"\x18", b"\x19\x01", b"\x1b\x00\x00", b"\x42a", b"\x63ab", b"\x82\x01",
        b"\xa1\x01", b"\x01\x02",  # trailing
        b"\x1c", b"\x5f", b"\x9f\x01\xff", b"\xbf\xff",  # reserved / indefinite
        b"\xc1\x01", b"\xf9\x00\x00", b"\xfb" + bytes(8), b"\xf7", b"\xe0",  # tag, floats, undefined
        b"\x62\xff\xfe",  # not UTF-8
        b"\xa1\x80\x01", b"\xa1\xf5\x01", b"\xa2\x01\x01\x01\x02",  # key types, duplicate key
        b"\x9b\xff\xff\xff\xff\xff\xff\xff\xff",  # a huge array from a short frame
        b"\x5b\x00\x00\x00\x01\x00\x00\x00\x00",
    ]
    for b in bad:
        e = raises(wire.WireError, wire.decode, b)
        assert str(e).startswith("wire: "), (b, e)


def test_decode_random_bytes_only_wire_errors():
    import random

    random.seed(7)
    rand = random.getrandbits
    ok = bad = 0
    for _ in range(2000):
        n = rand(5)
        b = bytes(rand(8) for _ in range(n))
        try:
            v = wire.decode(b)
        except wire.WireError:
            bad += 1
            continue
        ok += 1
        assert wire.decode(wire.encode(v)) == v
    assert ok and bad


def test_events_round_trip():
    events = [
        Event.Tick(123456789012, 42), Event.Shutdown(), Event.MemoryPressure(MemoryPressureLevel.LOW, 1000),
        Event.CpuHotplug(1, True), Event.ProcessCreated(5, 1), Event.ProcessExited(5, -3),
        Event.Interrupt(14, 0), Event.Custom("temp", b"\x01\x02"), Event.Custom("x"),
    ]
    for ev in events:
        o = wire.event_to_obj(ev)
        back = wire.obj_to_event(wire.decode(wire.encode(o)))
        assert back == ev, (ev, back)
        assert type(back) is type(ev)
    assert wire.event_to_obj(Event.Tick(1, 2)) == [0, 1, 2]
    assert wire.obj_to_event([3, 1, False]).online is False
    e = wire.obj_to_event([7, "n", b"d"])
    assert e.topic == EventTopic.Custom("n")
    raises(TypeError, wire.event_to_obj, "tick")


def test_bad_events_are_wire_errors():
    for o in ([], [8], [-1], ["Tick", 1, 2], [0, 1], [0, 1, 2, 3], [0, "1", 2], [0, None, 2],
              [2, 9, 100], [7, "", b""], [7, "n", "text"], [7, 3, b""], "x", None, {0: 1}, [True], [1, 1]):
        raises(wire.WireError, wire.obj_to_event, o)


def test_topics_round_trip():
    for t in (EventTopic.TICK, EventTopic.SHUTDOWN, EventTopic.MEMORY_PRESSURE, EventTopic.CPU_HOTPLUG,
              EventTopic.PROCESS, EventTopic.INTERRUPT, EventTopic.ALL, EventTopic.Custom("temp")):
        assert wire.obj_to_topic(wire.decode(wire.encode(remote_out.topic_to_obj(t)))) is t or \
            wire.obj_to_topic(remote_out.topic_to_obj(t)) == t
    assert wire.obj_to_topic(0) is EventTopic.TICK
    assert wire.obj_to_topic(6) is EventTopic.ALL
    for o in (7, -1, "", None, b"TICK", [0], True):
        raises(wire.WireError, wire.obj_to_topic, o)
    raises(TypeError, remote_out.topic_to_obj, "TICK")


def test_requests_and_responses_round_trip():
    r = Request("host", "get", b"\x00abc").with_priority(3)
    o = wire.decode(wire.encode(remote_out.request_to_obj(r)))
    assert o == ["get", b"\x00abc", 3]
    back = wire.obj_to_request(o, ModuleAddress.Name("peer"))
    assert back.request_type == "get" and back.payload == b"\x00abc" and back.priority == 3
    assert back.sender == ModuleAddress.Name("peer")
    assert back.id != r.id  # a local request of its own
    for o in (["", b"", 1], ["t", "p", 1], ["t", b"", 4], ["t", b"", -1], ["t", b""], 5, None,
              [3, b"", 1], ["t", b"", 1, 0]):
        raises(wire.WireError, wire.obj_to_request, o, "peer")
    for resp in (Response.Success(b"data"), Response.ok(), Response.Rejected("no"), Response.Error("bad"),
                 Response.NOT_SUPPORTED):
        back = remote_out.obj_to_response(wire.decode(wire.encode(wire.response_to_obj(resp))))
        assert back == resp and type(back) is type(resp)
    assert remote_out.obj_to_response([3]) is Response.NOT_SUPPORTED
    for o in ([], [0], [0, "s"], [1, b"r"], [2, 3], [4, b""], [3, 1], None, "x", [0, b"", 1]):
        raises(wire.WireError, remote_out.obj_to_response, o)
    raises(TypeError, wire.response_to_obj, b"ok")


def test_crc16_ccitt_false():
    assert wire.crc16(b"123456789") == 0x29B1
    assert wire.crc16(b"") == 0xFFFF


def test_frame_is_printable_ascii_without_repl_keys():
    import random

    random.seed(3)
    for n in (0, 1, 2, 3, 100, 512):
        p = bytes(random.getrandbits(8) for _ in range(n))
        f = wire.frame(p)
        assert f[:1] == b"~" and f[-1:] == b"\n"
        for c in f[:-1]:
            assert 32 < c < 127, (p, f)  # no Ctrl-A..E, Ctrl-C, "\r", "\n" inside
        assert b"~" not in f[1:]
        d = Deframer(512)
        assert d.feed(f) == [p]
        assert d.frames == 1 and d.errors() == 0


def test_deframer_split_noise_and_crlf():
    frames = [wire.frame(bytes([i]) * i) for i in range(1, 30)]
    stream = b"MicroPython v1 >>> print(1)\r\n1\r\n"
    for f in frames:
        stream += f.replace(b"\n", b"\r\n") + b"text between\r\n"
    for step in (1, 2, 7, 64, len(stream)):
        d = Deframer(64)
        got = []
        for i in range(0, len(stream), step):
            got += d.feed(stream[i:i + step])
        assert got == [bytes([i]) * i for i in range(1, 30)], step
        assert d.frames == 29 and d.errors() == 0
        assert d.noise == len(b"MicroPython v1 >>> print(1)\r\n1\r\n") + 29 * len(b"text between\r\n")


def test_deframer_drops_and_counts_bad_frames_and_resyncs():
    good = wire.frame(b"good")
    d = Deframer(16)
    f = bytearray(wire.frame(b"payload"))
    f[3] = ord("A") if f[3] != ord("A") else ord("B")  # a corrupted byte
    assert d.feed(bytes(f)) == [] and d.crc_errors == 1
    assert d.feed(good[:5] + good) == [b"good"] and d.malformed == 1  # cut short, then a full one
    assert d.feed(wire.frame(b"x" * 17)) == [] and d.oversize == 1  # 17 > max_frame
    assert d.feed(good) == [b"good"]
    assert d.feed(b"~\n~AA\n~!!!!\n") == [] and d.malformed == 4
    assert d.feed(good) == [b"good"] and d.frames == 3
    d2 = Deframer(16)
    assert d2.feed(wire.frame(b"x" * 16)) == [b"x" * 16]  # exactly max_frame: fine


def test_deframer_random_garbage_never_raises():
    import random

    random.seed(11)
    d = Deframer(64)
    good = wire.frame(b"ok")
    got = 0
    for _ in range(300):
        junk = bytes(random.getrandbits(8) for _ in range(random.getrandbits(6)))
        got += len(d.feed(junk))
        got += d.feed(b"\n" + good).count(b"ok")
    assert got >= 300  # every good frame after a line break is found
    assert d.frames == got


def test_a_tick_event_message_costs_under_1_kb_to_encode_or_decode():
    # scalars inside a container are handled without a call each (a call is a heap frame
    # on a board), decode walks the nesting without recursion: measured on the unix port
    # (64-bit) 659 / 646 B per message (was 2171 / 1622 with one recursive call per item)
    msg = [3, wire.event_to_obj(Event.Tick(12345, 678))]
    b = wire.encode(msg)
    assert wire.decode(b) == msg
    assert support.frame_alloc(wire.encode, msg) < 1024
    assert support.frame_alloc(wire.decode, b) < 1024
