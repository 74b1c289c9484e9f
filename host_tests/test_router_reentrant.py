# Handlers and callbacks that call the router back (send, queue, register, unregister,
# process_mailbox), and the registry under threads.
from support import need_threads, raises

from helix_ipc import (
    MessageRouter,
    ModuleAddress,
    ModuleNotFound,
    Request,
    Response,
)


def ok(request):
    return Response.ok()


def test_handler_sends_to_another_module_and_to_itself():
    r = MessageRouter()
    r.register(2, "leaf", lambda q: Response.success(b"leaf:" + q.payload))

    def relay(request):
        if request.request_type == "again":
            return r.send("relay", Request(1, "once", request.payload))
        inner = r.send(2, Request(1, "fwd", request.payload))
        return Response.success(b"relay(" + inner.data + b")")

    r.register(1, "relay", relay)
    assert r.send(1, Request(0, "x", b"p")).data == b"relay(leaf:p)"
    assert r.send(1, Request(0, "again", b"q")).data == b"relay(leaf:q)"
    assert r.messages_routed == 2 + 3


def test_handler_queues_and_processes_from_inside():
    r = MessageRouter()
    handled = []

    def h(request):
        handled.append(request.request_type)
        if request.request_type == "spawn":
            r.queue(1, Request(1, "child"))  # into its own mailbox, while being processed
            r.queue(2, Request(1, "other"))
            r.process_mailbox(2, 5)  # nested processing of another mailbox
        return Response.ok()

    r.register(1, "a", h)
    r.register(2, "b", h)
    r.queue(1, Request(0, "spawn"))
    assert r.process_mailbox(1, 1) == 1
    assert handled == ["spawn", "other"]
    assert r.mailbox_size(1) == 1
    assert r.process_mailbox(1, 5) == 1
    assert handled == ["spawn", "other", "child"]


def test_handler_registers_and_unregisters_others():
    r = MessageRouter()

    def admin(request):
        if request.request_type == "add":
            r.register(10, "added", ok)
            return r.send("added", Request(1, "hello"))
        if request.request_type == "remove":
            return Response.success(b"yes" if r.unregister(10) else b"no")
        return Response.NOT_SUPPORTED

    r.register(1, "admin", admin)
    assert r.send(1, Request(0, "add")) == Response.ok()
    assert r.is_registered(10)
    assert r.send(1, Request(0, "remove")).data == b"yes"
    assert not r.is_registered(10)
    assert r.send(1, Request(0, "remove")).data == b"no"


def test_handler_unregisters_itself_during_send():
    r = MessageRouter()

    def quitter(request):
        r.unregister(5)
        return Response.success(b"bye")

    def quitter_then_raise(request):
        r.unregister(6)
        raise ValueError("after unregistering")

    r.register(5, "quitter", quitter)
    r.register(6, "q2", quitter_then_raise)
    assert r.send("quitter", Request(0, "x")).data == b"bye"
    assert not r.is_registered(5)
    raises(ModuleNotFound, r.send, 5, Request(0, "x"))
    e = r.send(6, Request(0, "x"))  # the error still names the (now gone) module
    assert isinstance(e, Response.Error) and "ValueError" in e.message and "6" in e.message, e.message


def test_handler_unregisters_itself_during_process_mailbox():
    r = MessageRouter()
    handled = []
    answers = []

    def h(request):
        handled.append(request.request_type)
        if request.request_type == "quit":
            r.unregister(3)
        return Response.success(request.request_type.encode())

    r.register(3, "worker", h)
    r.queue(3, Request(0, "a"), answers.append)
    r.queue(3, Request(0, "quit"), answers.append)
    r.queue(3, Request(0, "b"), answers.append)
    r.queue(3, Request(0, "c"), answers.append)
    assert r.process_mailbox(3, 10) == 2  # stops: the module is gone
    assert handled == ["a", "quit"]
    assert len(answers) == 4  # each exactly once
    assert answers[0] == Response.Success(b"a")
    # b and c were answered by unregister (inside the handler), before quit's own answer
    assert isinstance(answers[1], Response.Error) and "unregistered" in answers[1].message
    assert isinstance(answers[2], Response.Error)
    assert answers[3] == Response.Success(b"quit")


def test_broadcast_skips_a_module_unregistered_meanwhile():
    r = MessageRouter()
    seen = []

    def first(request):
        seen.append(1)
        r.unregister(2)
        r.register(9, "late", ok)  # registered during the broadcast: not included
        return Response.ok()

    def second(request):
        seen.append(2)
        return Response.ok()

    r.register(1, "first", first)
    r.register(2, "second", second)
    r.register(3, "third", lambda q: seen.append(3) or Response.ok())
    out = r.broadcast(Request(ModuleAddress.Name("x"), "go"))
    assert [mid for mid, _ in out] == [1, 3]
    assert seen == [1, 3]
    assert r.is_registered(9)


def test_callback_calls_the_router():
    r = MessageRouter()
    r.register(1, "a", lambda q: Response.success(q.payload))
    r.register(2, "b", lambda q: Response.success(b"b"))
    log = []

    def cb(response):
        log.append(response.data)
        if response.data == b"first":
            r.queue(1, Request(0, "x", b"second"), cb)  # chain another request
            log.append(r.send(2, Request(0, "y")).data)
            r.unregister(2)
            r.register(2, "b2", ok)

    r.queue(1, Request(0, "x", b"first"), cb)
    assert r.process_mailbox(1, 10) == 2
    assert log == [b"first", b"b", b"second"]
    assert r.get_module_id("b2") == 2


def test_threads_register_unregister_and_send():
    # Registry writers on two threads, a reader sending all the time: no lost modules,
    # no exceptions other than ModuleNotFound for modules in flux.
    need_threads()

    r = MessageRouter()
    r.register(0, "stable", ok)
    stop = [False]
    errors = []

    def churn(base):
        def body():
            for round_ in range(40):
                for i in range(5):
                    r.register(base + i, "m%d" % (base + i), ok)
                for i in range(5):
                    if not r.unregister(base + i):
                        errors.append("lost %d" % (base + i))
            return True

        return body

    started = [False]

    def reader():
        n = 0
        while not stop[0]:
            if r.send(0, Request(1, "x")) != Response.ok():
                errors.append("bad response")
            try:
                r.send(100, Request(1, "x"))
            except ModuleNotFound:
                pass
            n += 1
            started[0] = True
        return n

    import _thread
    import time

    done = [None]
    writer_done = [False]

    def reader_body():
        done[0] = reader()

    def writer_body():
        churn(100)()
        writer_done[0] = True

    _thread.start_new_thread(reader_body, ())
    for _ in range(10000):  # the writers start once the reader runs
        if started[0]:
            break
        time.sleep(0.001)
    _thread.start_new_thread(writer_body, ())
    assert churn(200)()  # a second writer, concurrently, on this thread
    for _ in range(10000):
        if writer_done[0]:
            break
        time.sleep(0.001)
    assert writer_done[0]
    stop[0] = True
    for _ in range(5000):
        if done[0] is not None:
            break
        time.sleep(0.001)
    assert done[0] is not None and done[0] > 0
    assert errors == []
    assert r.module_count() == 1


def test_readers_never_miss_a_stable_module_while_the_tables_grow():
    # A writer thread grows the registry through several table rebuilds and shrinks it
    # again (in-place inserts and deletes in between) while this thread sends to modules
    # that stay registered all along: every send must find its module (no GIL on the
    # unix port: the reader runs truly alongside the writer).
    need_threads()
    import _thread
    import time

    r = MessageRouter()
    for i in range(20):
        r.register(i, "stable%d" % i, ok)
    done = [False]
    failure = []

    def writer():
        try:
            for round_ in range(3):
                for i in range(300):
                    r.register(1000 + i, "grow%d" % i, ok)
                for i in range(300):
                    r.unregister(1000 + i)
        except BaseException as e:  # noqa: B036 - handed to the main thread
            failure.append(e)
        done[0] = True

    _thread.start_new_thread(writer, ())
    req = Request(0, "x")
    sends = 0
    names = ["stable%d" % i for i in range(20)]
    addresses = [ModuleAddress.Name(n) for n in names]
    while not done[0]:
        for i in range(20):
            assert r.send(i, req) is Response.ok()
            assert r.send(names[i], req) is Response.ok()
            assert r.send(addresses[i], req) is Response.ok()
            sends += 3
    for _ in range(1000):
        if done[0]:
            break
        time.sleep(0.001)
    assert failure == [], failure
    assert sends > 0 and r.module_count() == 20
