# Tests for helix_ipc.router: registry, send, broadcast, errors, the global router.
# Mailboxes are in test_router_mailbox.py, reentrancy/threads in test_router_reentrant.py,
# allocation proofs in test_router_alloc.py.
from support import raises

from helix_ipc import (
    AlreadyRegistered,
    IpcError,
    MessageRouter,
    ModuleAddress,
    ModuleNotFound,
    Request,
    Response,
    global_router,
    send_request,
    send_to,
)


def scheduler(request):
    # The seed's example handler.
    if request.request_type == "get_stats":
        return Response.success(b"running=5,waiting=10")
    if request.request_type == "pause":
        return Response.ok()
    return Response.NOT_SUPPORTED


def test_seed_router_example():
    # The seed's "Message Router" example, translated.
    log = []
    global_router().register(1, "scheduler", scheduler)
    try:
        request = Request(ModuleAddress.Name("client"), "get_stats")
        response = send_to("scheduler", request)
        if isinstance(response, Response.Success):
            log.append(("info", response.data))
        elif isinstance(response, Response.Error):
            log.append(("error", response.message))
        assert log == [("info", b"running=5,waiting=10")]
        assert send_to("scheduler", Request(ModuleAddress.Name("client"), "pause")) == Response.ok()
        assert send_request(1, Request("client", "reboot")) is Response.NOT_SUPPORTED
        assert send_request(ModuleAddress.Name("scheduler"), request).data == b"running=5,waiting=10"
        # The seed's error-handling example: an unknown module is ModuleNotFound.
        try:
            send_to("unknown", request)
            raise AssertionError("no ModuleNotFound")
        except ModuleNotFound:
            pass
    finally:
        assert global_router().unregister(1)
    assert not global_router().is_registered(1)


def test_global_router_is_one_object():
    assert global_router() is global_router()
    assert isinstance(global_router(), MessageRouter)


def test_send_to_needs_a_name():
    raises(TypeError, send_to, 1, Request(1, "x"))
    raises(ValueError, send_to, "", Request(1, "x"))


def test_send_by_id_name_and_address():
    r = MessageRouter()
    r.register(7, "scheduler", scheduler)
    req = Request(ModuleAddress.Name("client"), "get_stats")
    expected = Response.Success(b"running=5,waiting=10")
    assert r.send(7, req) == expected
    assert r.send("scheduler", req) == expected
    assert r.send(ModuleAddress.Id(7), req) == expected
    assert r.send(ModuleAddress.Name("scheduler"), req) == expected
    assert r.messages_routed == 4
    assert r.handler_errors == 0


def test_handler_receives_the_request():
    r = MessageRouter()
    seen = []

    def h(request):
        seen.append(request)
        return Response.ok()

    r.register(0, "zero", h)
    req = Request(3, "t", b"payload")
    r.send(0, req)
    assert seen == [req] and seen[0] is req


def test_registry_queries():
    r = MessageRouter()
    assert r.module_count() == 0
    assert not r.is_registered(1)
    assert r.get_module_id("a") is None
    r.register(1, "a", scheduler)
    r.register(0, "b", scheduler)
    assert r.module_count() == 2
    assert r.is_registered(1) and r.is_registered(0)
    assert r.is_registered("a") and r.is_registered(ModuleAddress.Id(0))
    assert not r.is_registered(2) and not r.is_registered("c")
    assert r.get_module_id("a") == 1 and r.get_module_id("b") == 0
    raises(TypeError, r.get_module_id, 1)
    raises(ValueError, r.get_module_id, "")


def test_already_registered_says_which():
    r = MessageRouter()
    r.register(1, "scheduler", scheduler)
    e = raises(AlreadyRegistered, r.register, 1, "other", scheduler)
    msg = str(e)
    assert "id 1" in msg and "scheduler" in msg, msg
    e = raises(AlreadyRegistered, r.register, 2, "scheduler", scheduler)
    msg = str(e)
    assert "name 'scheduler'" in msg and "id 1" in msg, msg
    e = raises(AlreadyRegistered, r.register, 1, "scheduler", scheduler)
    assert "id 1" in str(e) and "'scheduler'" in str(e)
    r.register(2, "net", scheduler)
    e = raises(AlreadyRegistered, r.register, 1, "net", scheduler)  # id of one, name of another
    msg = str(e)
    assert "id 1" in msg and "'net'" in msg, msg
    assert isinstance(e, IpcError)
    assert r.module_count() == 2  # nothing half-registered


def test_register_bad_input():
    r = MessageRouter()
    raises(TypeError, r.register, "1", "a", scheduler)
    raises(TypeError, r.register, 1.0, "a", scheduler)
    raises(TypeError, r.register, True, "a", scheduler)
    raises(TypeError, r.register, None, "a", scheduler)
    raises(ValueError, r.register, -1, "a", scheduler)
    raises(TypeError, r.register, 1, 5, scheduler)
    raises(TypeError, r.register, 1, b"a", scheduler)
    raises(TypeError, r.register, 1, None, scheduler)
    raises(ValueError, r.register, 1, "", scheduler)
    raises(TypeError, r.register, 1, "a", None)
    raises(TypeError, r.register, 1, "a", "not callable")
    raises(TypeError, r.register, 1, "a", scheduler, 1.5)
    raises(ValueError, r.register, 1, "a", scheduler, 0)
    raises(ValueError, r.register, 1, "a", scheduler, -3)
    raises(ValueError, r.register, 1, "a", scheduler, 65537)
    raises(ValueError, MessageRouter, 0)
    raises(TypeError, MessageRouter, "64")
    assert r.module_count() == 0


def test_unregister():
    r = MessageRouter()
    r.register(1, "a", scheduler)
    assert r.unregister(1) is True
    assert r.unregister(1) is False
    assert r.unregister(99) is False
    assert r.module_count() == 0
    raises(ModuleNotFound, r.send, 1, Request(0, "get_stats"))
    raises(ModuleNotFound, r.send, "a", Request(0, "get_stats"))
    r.register(2, "a", scheduler)  # the name is free again
    r.register(1, "b", scheduler)  # so is the id
    assert r.get_module_id("a") == 2 and r.get_module_id("b") == 1
    raises(TypeError, r.unregister, "a")
    raises(ValueError, r.unregister, -1)


def test_send_errors_name_the_address():
    r = MessageRouter()
    r.register(1, "a", scheduler)
    req = Request(0, "x")
    assert "id 5" in str(raises(ModuleNotFound, r.send, 5, req))
    assert "'nope'" in str(raises(ModuleNotFound, r.send, "nope", req))
    assert "ModuleAddress.Id(5)" in str(raises(ModuleNotFound, r.send, ModuleAddress.Id(5), req))
    msg = str(raises(ModuleNotFound, r.send, ModuleAddress.Name("b"), req))
    assert "ModuleAddress.Name('b')" in msg, msg
    assert "broadcast" in str(raises(ValueError, r.send, ModuleAddress.BROADCAST, req))
    raises(ValueError, r.send, -1, req)
    raises(ValueError, r.send, "", req)
    raises(TypeError, r.send, 1.5, req)
    raises(TypeError, r.send, None, req)
    raises(TypeError, r.send, b"a", req)
    raises(TypeError, r.send, [1], req)
    assert r.messages_routed == 0
    assert r.send(1, Request(0, "pause")) == Response.ok()  # still works


def test_failing_handler_yields_error_naming_module_and_cause():
    r = MessageRouter()

    def boom(request):
        raise ValueError("disk on fire")

    r.register(3, "storage", boom)
    r.register(4, "ok", scheduler)
    for to in (3, "storage", ModuleAddress.Id(3), ModuleAddress.Name("storage")):
        resp = r.send(to, Request(0, "x"))
        assert isinstance(resp, Response.Error), resp
        assert "'storage'" in resp.message and "id 3" in resp.message, resp.message
        assert "ValueError" in resp.message and "disk on fire" in resp.message, resp.message
    assert r.handler_errors == 4
    assert r.messages_routed == 4
    assert r.send(4, Request(0, "pause")) == Response.ok()  # the router goes on


def test_handler_returning_non_response_yields_error():
    r = MessageRouter()
    results = [42, None, b"raw", "text", Response]  # the last: the class, not an instance

    def h(request):
        return results[request.payload[0]]

    r.register(2, "weird", h)
    for i, value in enumerate(results):
        resp = r.send(2, Request(0, "x", bytes([i])))
        assert isinstance(resp, Response.Error), resp
        assert "'weird'" in resp.message and "not a Response" in resp.message, resp.message
        assert type(value).__name__ in resp.message, resp.message
    assert r.handler_errors == len(results)


def test_response_subclass_passes():
    class Custom(Response.Success):
        pass

    r = MessageRouter()
    c = Custom(b"x")
    r.register(1, "c", lambda req: c)
    assert r.send(1, Request(0, "x")) is c
    assert r.send("c", Request(0, "x")) is c
    assert r.handler_errors == 0


class FalsyHandler:
    # A callable that is false (send tells a lookup miss from a raising handler by the
    # handler's truth, so such handlers must still be called exactly once).
    def __init__(self, fail):
        self.calls = 0
        self.fail = fail

    def __len__(self):
        return 0

    def __call__(self, request):
        self.calls += 1
        if self.fail:
            raise ValueError("nope")
        return Response.ok()


def test_false_handler_is_called_once_per_send():
    r = MessageRouter()
    good = FalsyHandler(False)
    bad = FalsyHandler(True)
    r.register(1, "good", good)
    r.register(2, "bad", bad)
    assert r.send(1, Request(0, "x")) == Response.ok()
    assert r.send("good", Request(0, "x")) == Response.ok()
    assert r.send(ModuleAddress.Id(1), Request(0, "x")) == Response.ok()
    assert good.calls == 3
    e = r.send(2, Request(0, "x"))
    assert isinstance(e, Response.Error) and "ValueError" in e.message and "'bad'" in e.message
    e = r.send("bad", Request(0, "x"))
    assert isinstance(e, Response.Error) and "nope" in e.message
    assert bad.calls == 2
    assert r.messages_routed == 5 and r.handler_errors == 2
    assert r.unregister(1) and r.unregister(2)
    raises(ModuleNotFound, r.send, 1, Request(0, "x"))
    raises(ModuleNotFound, r.send, "bad", Request(0, "x"))


def test_every_response_variant_passes_through():
    r = MessageRouter()
    out = [Response.ok(), Response.Rejected("busy"), Response.Error("bad"), Response.NOT_SUPPORTED]

    def h(request):
        return out[request.payload[0]]

    r.register(1, "v", h)
    for i in range(len(out)):
        assert r.send(1, Request(0, "x", bytes([i]))) is out[i]
    assert r.handler_errors == 0


class Fatal(BaseException):
    pass


def test_base_exceptions_are_not_swallowed():
    # KeyboardInterrupt / SystemExit must reach the caller, not become Response.Error.
    r = MessageRouter()

    def h(request):
        raise Fatal("stop")

    r.register(1, "f", h)
    raises(Fatal, r.send, 1, Request(0, "x"))
    raises(Fatal, r.send, ModuleAddress.Id(1), Request(0, "x"))
    raises(Fatal, r.broadcast, Request(0, "x"))
    raises(Fatal, r.send, "f", Request(0, "x"))
    r.queue(1, Request(0, "x"))
    raises(Fatal, r.process_mailbox, 1, 1)
    assert r.handler_errors == 0

    def cb(response):
        raise Fatal("from the callback")

    r.register(2, "ok", scheduler)
    r.queue(2, Request(0, "pause"), cb)
    raises(Fatal, r.process_mailbox, 2, 1)
    assert r.callback_errors == 0
    assert r.send(2, Request(0, "pause")) == Response.ok()  # the router stays usable


def test_broadcast_order_and_sender_exclusion():
    r = MessageRouter()
    calls = []

    def make(name):
        def h(request):
            calls.append(name)
            return Response.success(name.encode())

        return h

    for mid, name in ((5, "e"), (1, "a"), (3, "c"), (0, "z"), (2, "b")):
        r.register(mid, name, make(name))
    out = r.broadcast(Request(ModuleAddress.Id(3), "ping"))
    assert [mid for mid, _ in out] == [0, 1, 2, 5]
    assert calls == ["z", "a", "b", "e"]
    assert out[0] == (0, Response.Success(b"z"))
    del calls[:]
    out = r.broadcast(Request(ModuleAddress.Name("a"), "ping"))
    assert [mid for mid, _ in out] == [0, 2, 3, 5]
    out = r.broadcast(Request(ModuleAddress.Name("outsider"), "ping"))
    assert [mid for mid, _ in out] == [0, 1, 2, 3, 5]
    out = r.broadcast(Request(ModuleAddress.BROADCAST, "ping"))
    assert len(out) == 5
    assert r.messages_routed == 4 + 4 + 5 + 5


def test_broadcast_collects_errors_and_goes_on():
    r = MessageRouter()
    r.register(1, "ok", scheduler)
    r.register(2, "bad", lambda req: 1 // 0)
    r.register(3, "ok2", scheduler)
    out = r.broadcast(Request(9, "pause"))
    assert [mid for mid, _ in out] == [1, 2, 3]
    assert out[0][1] == Response.ok() and out[2][1] == Response.ok()
    err = out[1][1]
    assert isinstance(err, Response.Error) and "'bad'" in err.message and "ZeroDivisionError" in err.message


def test_broadcast_empty_and_bad_input():
    r = MessageRouter()
    assert r.broadcast(Request(0, "x")) == []
    r.register(0, "only", scheduler)
    assert r.broadcast(Request(0, "x")) == []  # the sender itself is skipped
    raises(TypeError, r.broadcast, "request")
    raises(TypeError, r.broadcast, None)


def test_error_hook_gets_the_exception_object():
    r = MessageRouter()
    seen = []
    r.error_hook = lambda where, error: seen.append((where, error))
    boom = ValueError("disk on fire")

    def h(request):
        raise boom

    r.register(1, "stats", h)
    r.register(2, "weird", lambda q: 42)
    for to in (1, "stats", ModuleAddress.Id(1), ModuleAddress.Name("stats")):
        resp = r.send(to, Request(0, "x"))
        assert isinstance(resp, Response.Error) and "'stats'" in resp.message
    assert len(seen) == 4
    for where, error in seen:
        assert where == "module 'stats' (id 1)", where
        assert error is boom
    del seen[:]
    assert isinstance(r.send(2, Request(0, "x")), Response.Error)
    assert seen == [("module 'weird' (id 2)", 42)]  # a bad result: the value itself
    assert r.handler_errors == 5
    # broadcast and the mailbox path report the same way
    del seen[:]
    r.broadcast(Request(9, "x"))
    assert [w for w, _ in seen] == ["module 'stats' (id 1)", "module 'weird' (id 2)"]
    assert seen[0][1] is boom


def test_a_hook_that_raises_does_not_break_send():
    r = MessageRouter()

    def bad_hook(where, error):
        raise RuntimeError("hook broke")

    r.error_hook = bad_hook
    r.register(1, "b", lambda q: 1 // 0)
    resp = r.send(1, Request(0, "x"))  # the hook's failure goes to stderr
    assert isinstance(resp, Response.Error) and "ZeroDivisionError" in resp.message
    assert r.handler_errors == 1


def test_default_hook_is_none_and_failures_are_still_counted():
    r = MessageRouter()
    assert r.error_hook is None
    r.register(1, "b", lambda q: 1 // 0)
    assert isinstance(r.send(1, Request(0, "x")), Response.Error)  # one line on stderr
    assert r.handler_errors == 1


def test_send_refuses_what_is_not_a_request():
    r = MessageRouter()
    calls = []
    r.register(1, "a", lambda q: calls.append(q) or Response.ok())
    for to in (1, "a", ModuleAddress.Id(1), ModuleAddress.Name("a")):
        for bad in (None, "ping", b"ping", 7, Request):
            e = raises(TypeError, r.send, to, bad)
            assert "request must be a Request" in str(e), str(e)
            e = raises(TypeError, r.queue, to, bad)
            assert "request must be a Request" in str(e), str(e)
    raises(TypeError, r.broadcast, "ping")
    assert calls == [] and r.messages_routed == 0 and r.mailbox_size(1) == 0

    class MyRequest(Request):
        pass

    assert r.send(1, MyRequest(0, "x")) == Response.ok()  # a subclass is a Request
    assert len(calls) == 1


def test_counters_and_hook_after_handlers_that_unregister_themselves():
    r = MessageRouter()
    seen = []
    r.error_hook = lambda where, error: seen.append(where)

    def h(request):
        r.unregister(4)
        raise KeyError("gone")

    r.register(4, "q", h)
    e = r.send(4, Request(0, "x"))
    assert isinstance(e, Response.Error) and "'q'" in e.message
    assert seen == ["module 'q' (id 4)"] and r.handler_errors == 1
