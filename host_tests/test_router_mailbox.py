# Tests for the router's per-module priority mailboxes: queue, process_mailbox,
# callbacks exactly once, bounds, unregister with queued requests.
from support import raises

from helix_ipc import (
    ChannelFull,
    MessagePriority,
    MessageRouter,
    ModuleAddress,
    ModuleNotFound,
    Request,
    Response,
)

LOW, NORMAL, HIGH, CRITICAL = (
    MessagePriority.LOW,
    MessagePriority.NORMAL,
    MessagePriority.HIGH,
    MessagePriority.CRITICAL,
)


def recording_router(capacity=None):
    # Module 1 "rec" records the request types it handles, in order.
    r = MessageRouter() if capacity is None else MessageRouter(capacity)
    handled = []

    def h(request):
        handled.append(request.request_type)
        return Response.success(request.request_type.encode())

    r.register(1, "rec", h)
    return r, handled


def req(name, priority=NORMAL):
    return Request(ModuleAddress.Name("client"), name).with_priority(priority)


def test_highest_priority_first_fifo_within():
    r, handled = recording_router()
    plan = [
        ("l1", LOW), ("n1", NORMAL), ("c1", CRITICAL), ("h1", HIGH), ("l2", LOW),
        ("c2", CRITICAL), ("n2", NORMAL), ("h2", HIGH), ("n3", NORMAL), ("c3", CRITICAL),
        ("l3", LOW), ("h3", HIGH),
    ]
    for name, p in plan:
        r.queue(1, req(name, p))
    assert r.mailbox_size(1) == len(plan)
    assert r.process_mailbox(1, 100) == len(plan)
    assert handled == ["c1", "c2", "c3", "h1", "h2", "h3", "n1", "n2", "n3", "l1", "l2", "l3"]
    assert r.mailbox_size(1) == 0
    assert r.messages_routed == len(plan)


def test_interleaved_queue_and_process_matches_a_model():
    # Many rounds of mixed queueing and partial processing, across ring wraparound,
    # checked against a straightforward model of "highest priority, then oldest".
    r, handled = recording_router(capacity=8)
    r.register(2, "small", lambda q: Response.ok(), 5)
    model = []  # (priority, seq, name)
    expected = []
    seq = 0
    x = 12345
    for _ in range(300):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        n_queue = x % 4
        for _ in range(n_queue):
            if len(model) >= 8:
                raises(ChannelFull, r.queue, 1, req("overflow", LOW))
                break
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF
            p = x % 4
            name = "r%d" % seq
            r.queue(1, req(name, p))
            model.append((p, seq, name))
            seq += 1
        k = (x >> 8) % 3
        got = r.process_mailbox(1, k)
        assert got == min(k, len(model))
        for _ in range(got):
            best = None
            for item in model:
                if best is None or item[0] > best[0] or (item[0] == best[0] and item[1] < best[1]):
                    best = item
            model.remove(best)
            expected.append(best[2])
        assert r.mailbox_size(1) == len(model)
    r.process_mailbox(1, 100)
    while model:
        best = None
        for item in model:
            if best is None or item[0] > best[0] or (item[0] == best[0] and item[1] < best[1]):
                best = item
        model.remove(best)
        expected.append(best[2])
    assert handled == expected
    assert seq > 100


def test_process_max_count():
    r, handled = recording_router()
    for i in range(5):
        r.queue("rec", req("m%d" % i))
    assert r.process_mailbox(1, 0) == 0
    assert r.process_mailbox(1, 2) == 2
    assert handled == ["m0", "m1"]
    assert r.mailbox_size(1) == 3
    assert r.process_mailbox("rec", 10) == 3
    assert r.process_mailbox(1, 10) == 0
    assert handled == ["m0", "m1", "m2", "m3", "m4"]


def test_default_capacity_64_and_channel_full():
    r, handled = recording_router()
    assert r.mailbox_capacity(1) == 64
    for i in range(64):
        r.queue(1, req("m%d" % i, i % 4))
    e = raises(ChannelFull, r.queue, 1, req("x"))
    assert "'rec'" in str(e) and "64" in str(e), str(e)
    raises(ChannelFull, r.queue, 1, req("y", CRITICAL))
    assert r.messages_refused == 2
    assert r.mailbox_size(1) == 64
    assert r.process_mailbox(1, 1) == 1
    r.queue(1, req("z"))  # room again
    assert r.mailbox_size(1) == 64


def test_capacity_per_module_and_router_default():
    r = MessageRouter(3)
    r.register(1, "a", lambda q: Response.ok())
    r.register(2, "b", lambda q: Response.ok(), mailbox_capacity=1)
    r.register(3, "c", lambda q: Response.ok(), mailbox_capacity=100)
    assert r.mailbox_capacity(1) == 3
    assert r.mailbox_capacity("b") == 1
    assert r.mailbox_capacity(ModuleAddress.Id(3)) == 100
    r.queue(2, req("x"))
    raises(ChannelFull, r.queue, 2, req("y", CRITICAL))
    for _ in range(3):
        r.queue(1, req("x", HIGH))
    raises(ChannelFull, r.queue, 1, req("y"))
    for _ in range(100):
        r.queue(3, req("x", LOW))
    raises(ChannelFull, r.queue, 3, req("y"))
    assert r.messages_refused == 3


def test_callbacks_invoked_exactly_once_with_the_response():
    r = MessageRouter()
    r.register(1, "s", lambda q: Response.success(q.payload))
    got = {}

    def cb_for(key):
        def cb(response):
            got.setdefault(key, []).append(response)

        return cb

    for i in range(20):
        r.queue(1, Request(0, "x", bytes([i])).with_priority(i % 4), cb_for(i))
    r.queue(1, Request(0, "no callback"))
    assert r.process_mailbox(1, 7) == 7
    assert r.process_mailbox(1, 100) == 14
    assert r.process_mailbox(1, 100) == 0
    assert sorted(got) == list(range(20))
    for i in range(20):
        assert got[i] == [Response.Success(bytes([i]))], (i, got[i])


def test_callback_gets_error_from_failing_handler():
    r = MessageRouter()
    r.register(1, "bad", lambda q: 1 // 0)
    r.register(2, "weird", lambda q: "str")
    out = []
    r.queue(1, req("x"), out.append)
    r.queue(2, req("y"), out.append)
    r.process_mailbox(1, 5)
    r.process_mailbox(2, 5)
    assert len(out) == 2
    assert isinstance(out[0], Response.Error) and "'bad'" in out[0].message
    assert "ZeroDivisionError" in out[0].message
    assert isinstance(out[1], Response.Error) and "'weird'" in out[1].message
    assert r.handler_errors == 2


def test_failing_callback_is_counted_and_processing_goes_on():
    r, handled = recording_router()
    calls = []

    def bad_cb(response):
        calls.append(response)
        raise RuntimeError("callback broke")

    r.queue(1, req("a"), bad_cb)
    r.queue(1, req("b"), bad_cb)
    r.queue(1, req("c"), calls.append)
    assert r.process_mailbox(1, 10) == 3
    assert handled == ["a", "b", "c"]
    assert len(calls) == 3
    assert r.callback_errors == 2


def test_unregister_with_full_mailbox_answers_every_callback():
    r = MessageRouter()
    handled = []
    r.register(4, "doomed", lambda q: handled.append(q) or Response.ok(), mailbox_capacity=16)
    answers = {}

    def cb_for(i):
        def cb(response):
            answers.setdefault(i, []).append(response)

        return cb

    for i in range(12):
        r.queue(4, req("r%d" % i, i % 4), cb_for(i))
    for i in range(4):
        r.queue(4, req("silent%d" % i))  # no callback: counted as discarded
    raises(ChannelFull, r.queue, 4, req("one too many"))
    assert r.unregister(4) is True
    assert handled == []
    assert sorted(answers) == list(range(12))
    for i in range(12):
        (resp,) = answers[i]
        assert isinstance(resp, Response.Error), resp
        assert "'doomed'" in resp.message and "unregistered" in resp.message, resp.message
    assert r.messages_discarded == 4
    raises(ModuleNotFound, r.queue, 4, req("late"))
    raises(ModuleNotFound, r.process_mailbox, 4, 1)
    raises(ModuleNotFound, r.mailbox_size, 4)
    # A new module under the same id starts with an empty mailbox.
    r.register(4, "reborn", lambda q: Response.ok())
    assert r.mailbox_size(4) == 0
    assert r.process_mailbox(4, 10) == 0
    assert sorted(answers) == list(range(12)) and all(len(v) == 1 for v in answers.values())


def test_unregister_callback_errors_are_counted():
    r = MessageRouter()
    r.register(1, "m", lambda q: Response.ok())

    def bad(response):
        raise ValueError("x")

    r.queue(1, req("a"), bad)
    r.queue(1, req("b"), bad)
    assert r.unregister(1)
    assert r.callback_errors == 2


def test_queue_and_process_bad_input():
    r, _ = recording_router()
    raises(ModuleNotFound, r.queue, 2, req("x"))
    raises(ModuleNotFound, r.queue, "nope", req("x"))
    assert "broadcast" in str(raises(ValueError, r.queue, ModuleAddress.BROADCAST, req("x")))
    raises(TypeError, r.queue, 1, "not a request")
    raises(TypeError, r.queue, 1, None)
    raises(TypeError, r.queue, 1, req("x"), "not callable")
    bad = req("x")
    bad.priority = 9  # tampered with after with_priority
    raises(ValueError, r.queue, 1, bad)
    bad.priority = "HIGH"
    raises(TypeError, r.queue, 1, bad)
    raises(TypeError, r.queue, 1.5, req("x"))
    raises(ValueError, r.queue, -2, req("x"))
    assert r.mailbox_size(1) == 0
    raises(ModuleNotFound, r.process_mailbox, 2, 1)
    raises(TypeError, r.process_mailbox, 1, 1.0)
    raises(TypeError, r.process_mailbox, 1, None)
    raises(ValueError, r.process_mailbox, 1, -1)
    raises(ModuleNotFound, r.mailbox_size, 9)
    raises(ModuleNotFound, r.mailbox_capacity, 9)
    raises(TypeError, r.mailbox_size, [1])


def test_empty_mailbox_before_first_queue():
    r, _ = recording_router()
    assert r.mailbox_size(1) == 0
    assert r.process_mailbox(1, 5) == 0


def test_failing_callbacks_go_to_the_hook_with_the_exception():
    r, handled = recording_router()
    seen = []
    r.error_hook = lambda where, error: seen.append((where, error))
    boom = RuntimeError("callback broke")

    def bad_cb(response):
        raise boom

    a = req("a")
    r.queue(1, a, bad_cb)
    assert r.process_mailbox(1, 5) == 1
    assert r.callback_errors == 1
    assert seen == [("callback of request %d to module 'rec' (id 1)" % a.id, boom)], seen
    b = req("b")
    r.queue(1, b, bad_cb)  # answered by unregister: counted and reported the same way
    assert r.unregister(1)
    assert r.callback_errors == 2
    assert seen[1] == ("callback of request %d to module 'rec' (id 1)" % b.id, boom)


def test_mailbox_notify_is_called_after_each_queue_outside_the_lock():
    # The hook the asyncio layer wakes a waiting server with: called once per accepted
    # queue(), after the request is in the mailbox, with the lock free (it may queue or
    # process itself).
    r, handled = recording_router()
    r.queue(1, req("first"))  # makes the mailbox
    mb = r._find(1).mailbox
    calls = []

    def notify():
        calls.append(r.mailbox_size(1))
        if len(calls) == 1:
            r.process_mailbox(1, 1)  # re-enters the router: no deadlock

    mb.notify = notify
    r.queue(1, req("second"))
    assert calls == [2]
    assert handled == ["first"] and r.mailbox_size(1) == 1
    r.queue(1, req("third"), lambda resp: None)
    assert calls == [2, 2]
    raises(ChannelFull, lambda: [r.queue(1, req("x")) for _ in range(100)])
    assert len(calls) == 2 + 62  # refused queues do not notify
