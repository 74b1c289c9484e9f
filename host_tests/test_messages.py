# Tests for helix_ipc.messages: MessagePriority, ModuleAddress, Request, Response.
from support import raises

from helix_ipc import MessagePriority, ModuleAddress, Request, Response


def test_priority_values_are_ordered_ints():
    p = MessagePriority
    assert [p.LOW, p.NORMAL, p.HIGH, p.CRITICAL] == [0, 1, 2, 3]
    assert Request(ModuleAddress.Id(1), "x").priority == MessagePriority.NORMAL


def test_module_address_equal_and_hashable_by_value():
    a, b = ModuleAddress.Id(3), ModuleAddress.Id(3)
    assert a == b and not (a != b)
    assert hash(a) == hash(b)
    assert ModuleAddress.Name("x") == ModuleAddress.Name("x")
    assert ModuleAddress.Id(3) != ModuleAddress.Id(4)
    assert ModuleAddress.Name("3") != ModuleAddress.Id(3)
    assert ModuleAddress.Id(3) != 3
    assert ModuleAddress.BROADCAST == ModuleAddress.BROADCAST
    assert ModuleAddress.BROADCAST != ModuleAddress.Id(0)
    d = {ModuleAddress.Id(1): "one", ModuleAddress.Name("one"): "name"}
    assert d[ModuleAddress.Id(1)] == "one"
    assert d[ModuleAddress.Name("one")] == "name"
    assert isinstance(a, ModuleAddress) and isinstance(a, ModuleAddress.Id)
    assert isinstance(ModuleAddress.Name("x"), ModuleAddress.Name)
    assert a.value == 3 and ModuleAddress.Name("x").value == "x"
    assert repr(a) == "ModuleAddress.Id(3)"
    assert repr(ModuleAddress.Name("x")) == "ModuleAddress.Name('x')"
    assert repr(ModuleAddress.BROADCAST) == "ModuleAddress.BROADCAST"


def test_module_address_bad_input():
    raises(TypeError, ModuleAddress.Id, "3")
    raises(TypeError, ModuleAddress.Id, 1.0)
    raises(TypeError, ModuleAddress.Id, True)
    raises(ValueError, ModuleAddress.Id, -1)
    raises(TypeError, ModuleAddress.Name, 3)
    raises(TypeError, ModuleAddress.Name, b"x")
    raises(ValueError, ModuleAddress.Name, "")


def test_request_fields_and_builders():
    r = Request(ModuleAddress.Name("client"), "get_stats")
    assert r.sender == ModuleAddress.Name("client")
    assert r.request_type == "get_stats"
    assert r.payload == b""
    assert r.priority == MessagePriority.NORMAL
    assert r.with_payload(b"abc") is r and r.payload == b"abc"
    assert r.with_priority(MessagePriority.CRITICAL) is r and r.priority == MessagePriority.CRITICAL
    r.with_payload(bytearray(b"x"))
    r.with_payload(memoryview(b"yz"))
    assert bytes(r.payload) == b"yz"
    r2 = Request(ModuleAddress.Id(7), "t", b"p")
    assert r2.payload == b"p"
    assert "get_stats" in repr(r)


def test_request_sender_int_or_str_becomes_an_address():
    assert Request(5, "x").sender == ModuleAddress.Id(5)
    assert Request("client", "x").sender == ModuleAddress.Name("client")
    assert Request(ModuleAddress.BROADCAST, "x").sender == ModuleAddress.BROADCAST


def test_request_ids_are_unique_small_ints():
    ids = [Request(1, "x").id for _ in range(500)]
    assert len(set(ids)) == 500
    for i in ids:
        assert isinstance(i, int) and 0 <= i < (1 << 29)


def test_request_id_counter_wraps():
    from helix_ipc import messages

    saved = messages._ids[0]
    try:
        messages._ids[0] = (1 << 29) - 1
        a = Request(1, "x")
        b = Request(1, "x")
        assert a.id == (1 << 29) - 1
        assert b.id == 0
    finally:
        messages._ids[0] = saved


def test_request_bad_input():
    raises(TypeError, Request, 1.5, "x")
    raises(TypeError, Request, None, "x")
    raises(ValueError, Request, -1, "x")
    raises(ValueError, Request, "", "x")
    raises(TypeError, Request, 1, 3)
    raises(TypeError, Request, 1, None)
    raises(TypeError, Request, 1, "x", "text payload")
    raises(TypeError, Request, 1, "x", [1, 2])
    r = Request(1, "x")
    raises(TypeError, r.with_payload, "str")
    raises(TypeError, r.with_payload, None)
    raises(ValueError, r.with_priority, 4)
    raises(ValueError, r.with_priority, -1)
    raises(ValueError, r.with_priority, 300)
    raises(TypeError, r.with_priority, "HIGH")
    raises(TypeError, r.with_priority, 1.0)
    raises(TypeError, r.with_priority, None)
    assert r.priority == MessagePriority.NORMAL and r.payload == b""


def test_response_variants_and_helpers():
    s = Response.Success(b"data")
    assert isinstance(s, Response) and isinstance(s, Response.Success)
    assert s.is_success and s.data == b"data"
    assert Response.success(b"d") == Response.Success(b"d")
    assert Response.ok() == Response.Success(b"") and Response.ok().is_success
    rj = Response.rejected("busy")
    assert isinstance(rj, Response.Rejected) and rj.reason == "busy" and not rj.is_success
    assert rj == Response.Rejected("busy") and rj != Response.Rejected("other")
    e = Response.error("boom")
    assert isinstance(e, Response.Error) and e.message == "boom" and not e.is_success
    assert e == Response.Error("boom")
    ns = Response.NOT_SUPPORTED
    assert isinstance(ns, Response) and not ns.is_success
    assert ns == Response.NOT_SUPPORTED
    # variants never compare equal across kinds
    assert Response.Error("x") != Response.Rejected("x")
    assert Response.Success(b"") != Response.NOT_SUPPORTED
    assert hash(Response.Error("x")) == hash(Response.Error("x"))
    assert repr(s) == "Response.Success(b'data')"
    assert repr(ns) == "Response.NOT_SUPPORTED"
    assert repr(e) == "Response.Error('boom')"


def test_response_bad_input():
    raises(TypeError, Response.Error, 3)
    raises(TypeError, Response.error, None)
    raises(TypeError, Response.Rejected, b"bytes")
    raises(TypeError, Response.rejected, 1)


def test_empty_request_type_and_text_data_are_refused():
    e = raises(ValueError, Request, 1, "")
    assert "request_type" in str(e)
    raises(TypeError, Request, 1, b"ping")
    e = raises(TypeError, Response.success, "text")
    assert "data must be bytes-like" in str(e), str(e)
    raises(TypeError, Response.Success, "text")
    raises(TypeError, Response.Success, 5)
    assert Response.success(bytearray(b"x")).data == bytearray(b"x")
    assert Response.success(memoryview(b"yz")).is_success
    assert Response.success() == Response.ok()


def test_helpers_build_the_variants():
    assert isinstance(Response.success(b"x"), Response.Success)
    assert isinstance(Response.rejected("no"), Response.Rejected)
    assert isinstance(Response.error("bad"), Response.Error)
    assert Response.ok() is Response.ok()
    assert isinstance(Response.NOT_SUPPORTED, Response) and not Response.NOT_SUPPORTED.is_success
    assert repr(Response.Rejected("busy")) == "Response.Rejected('busy')"
    assert ModuleAddress.BROADCAST.value is None
