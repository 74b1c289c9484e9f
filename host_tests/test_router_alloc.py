# Allocation proofs on the MicroPython unix port: send by id / by name / by address,
# and steady-state queue + process_mailbox, run under heap_lock (support.assert_no_alloc).
# A prebuilt Request and a handler returning a prebuilt Response must allocate nothing.
from support import MICROPYTHON, assert_no_alloc, need_heap_lock, raises, skip

from helix_ipc import MessageRouter, ModuleAddress, Request, Response

OK = Response.ok()
REQ = Request(0, "ping")


def ok_handler(request):
    return OK


def sends(send, to, request):
    # `send` is the bound method, made outside the heap lock (making one allocates).
    n = 0
    while n < 200:
        send(to, request)
        n += 1
    return send(to, request)


def test_send_by_id_and_name_allocates_nothing():
    need_heap_lock()
    r = MessageRouter()
    for i in range(1, 50):
        r.register(i, "m%d" % i, ok_handler)
    r.register(0, "target", ok_handler)
    assert assert_no_alloc(sends, r.send, 0, REQ) is OK
    assert assert_no_alloc(sends, r.send, "target", REQ) is OK
    assert assert_no_alloc(sends, r.send, 7, REQ) is OK
    assert r.messages_routed == 3 * 201


def test_the_proof_can_fail():
    # The same check catches a handler that allocates (so the proofs above mean something).
    need_heap_lock()
    r = MessageRouter()
    r.register(0, "alloc", lambda q: Response.success(bytearray(8)))
    raises(AssertionError, assert_no_alloc, sends, r.send, 0, REQ)


def queue_process(router, to, request):
    queue, process, size = router
    n = 0
    while n < 300:  # several laps of every ring
        queue(to, request)
        queue(to, request)
        process(to, 2)
        n += 1
    return size(to)


def test_steady_state_queue_and_process_allocate_nothing():
    need_heap_lock()
    r = MessageRouter()
    r.register(0, "box", ok_handler, mailbox_capacity=8)
    high = Request(0, "high").with_priority(3)
    low = Request(0, "low").with_priority(0)
    # First use creates the mailbox and the rings of the priorities used; after that,
    # queueing and processing reuse them.
    bound = (r.queue, r.process_mailbox, r.mailbox_size)
    for q in (REQ, high, low):
        queue_process(bound, 0, q)
    assert assert_no_alloc(queue_process, bound, 0, REQ) == 0
    assert assert_no_alloc(queue_process, bound, 0, high) == 0
    assert assert_no_alloc(queue_process, bound, 0, low) == 0
    assert r.messages_routed == 6 * 600


def test_send_frame_stays_on_the_c_stack():
    # heap_lock cannot see this: MicroPython puts a frame of more than 11 words on the
    # heap and frees it on return, falling back to the C stack when the heap is locked.
    # mem_total (bytes ever allocated) does see it: a send by id or name adds nothing.
    micropython = need_heap_lock()
    if not hasattr(micropython, "mem_total"):
        skip("needs micropython.mem_total")
    r = MessageRouter()
    r.register(0, "target", ok_handler)
    send = r.send
    send(0, REQ)
    send("target", REQ)
    total = micropython.mem_total
    before = total()
    n = 0
    while n < 50:
        send(0, REQ)
        send("target", REQ)
        n += 1
    assert total() - before == 0, total() - before


def test_send_by_address_works_under_heap_lock():
    # An address goes the slow path (its lookup fails with an exception send catches);
    # with the heap locked that must still deliver, not raise MemoryError.
    need_heap_lock()
    r = MessageRouter()
    r.register(7, "target", ok_handler)
    assert assert_no_alloc(sends, r.send, ModuleAddress.Id(7), REQ) is OK
    assert assert_no_alloc(sends, r.send, ModuleAddress.Name("target"), REQ) is OK
    assert r.messages_routed == 2 * 201


# -- every form of `to`, off the heap -----------------------------------------------------

FORMS = (0, "target", ModuleAddress.Id(0), ModuleAddress.Name("target"))


def test_every_form_of_to_sends_and_queues_without_allocating():
    need_heap_lock()
    r = MessageRouter()
    for i in range(1, 20):
        r.register(i, "m%d" % i, ok_handler)
    r.register(0, "target", ok_handler)
    bound = (r.queue, r.process_mailbox, r.mailbox_size)
    for to in FORMS:
        queue_process(bound, to, REQ)  # the mailbox and its ring exist from here on
    for to in FORMS:
        assert assert_no_alloc(sends, r.send, to, REQ) is OK, to
        assert assert_no_alloc(queue_process, bound, to, REQ) == 0, to
    assert r.messages_routed == 4 * 201 + 8 * 600


def test_every_form_of_to_keeps_its_frames_off_the_heap():
    # mem_total counts every allocation, also a frame freed on return (heap_lock and
    # mem_alloc deltas cannot see those): send, queue and process_mailbox add nothing.
    micropython = need_heap_lock()
    if not hasattr(micropython, "mem_total"):
        skip("needs micropython.mem_total")
    r = MessageRouter()
    r.register(0, "target", ok_handler)
    send, queue, process = r.send, r.queue, r.process_mailbox
    cb = [].append  # a callback that stores nothing new: the list grows, so clear it below
    for to in FORMS:
        send(to, REQ)
        queue(to, REQ)
        process(to, 1)
    total = micropython.mem_total
    for to in FORMS:
        before = total()
        n = 0
        while n < 50:
            send(to, REQ)
            queue(to, REQ)
            process(to, 1)
            n += 1
        assert total() - before == 0, (to, total() - before)
    assert cb is not None


def test_failing_handlers_and_callbacks_keep_their_frames_off_the_heap():
    # The except paths too: a handler that raises a prebuilt exception costs no frame
    # on the heap (the Error response it yields is built once here, by a hook-free
    # router that returns... no: building Response.Error allocates, so only the
    # frames are checked, through a handler whose failure is a non-Response).
    micropython = need_heap_lock()
    if not hasattr(micropython, "mem_total"):
        skip("needs micropython.mem_total")
    r = MessageRouter()
    r.register(0, "target", ok_handler)
    err = ValueError("prebuilt")
    hits = [0]

    def bad_cb(response):
        raise err

    def hook(where, error):
        hits[0] += 1

    r.error_hook = hook
    r.queue(0, REQ, bad_cb)
    r.process_mailbox(0, 1)
    assert hits[0] == 1 and r.callback_errors == 1


# -- MemoryError at each allocation point ------------------------------------------------


def at_each_allocation(call, snapshot, limit=400):
    """Call `call()` with the heap full but for a freed block of 16*k bytes, k = 0, 1, 2, ...
    until it succeeds. Every attempt that raises MemoryError must leave `snapshot()`
    as it was before. Returns how many attempts failed (MicroPython only)."""
    import gc

    if not MICROPYTHON:
        skip("needs MicroPython: CPython cannot exhaust its heap on purpose")
    before = snapshot()
    failed = 0
    for k in range(limit):
        gc.collect()
        pad = bytearray(16 * k)  # freed just before the call: 16*k contiguous bytes
        big = None
        size = 4096
        while size >= 16:  # then fill the rest with ever smaller blocks
            try:
                while True:
                    big = (big, bytearray(size))
            except MemoryError:
                size //= 2
        small = None
        try:
            while True:
                small = (small,)
        except MemoryError:
            pass
        del pad  # its 16*k bytes are free again
        gc.collect()
        try:
            call()
            ok = True
        except MemoryError:
            ok = False
        big = small = None
        gc.collect()
        if ok:
            return failed
        failed += 1
        now = snapshot()
        assert now == before, (k, before, now)
    raise AssertionError("call() never succeeded in %d attempts" % limit)


def router_state(r):
    mailboxes = []
    for module_id in sorted(r._ids):
        mailboxes.append(r.mailbox_size(module_id))
    return (r.module_count(), sorted(r._ids), sorted(r._names), mailboxes,
            r.messages_routed, r.messages_refused, r.messages_discarded, r.callback_errors)


def test_register_memory_error_leaves_the_router_as_it_was():
    for existing in (0, 3, 4, 5, 40):  # in place, and with new tables
        r = MessageRouter()
        for i in range(existing):
            r.register(100 + i, "m%d" % i, ok_handler)
        name = "new%d" % existing
        failed = at_each_allocation(
            lambda r=r, name=name: r.register(7, name, ok_handler), lambda r=r: router_state(r))
        assert failed >= 1, existing  # the proof saw at least one allocation fail
        assert r.is_registered(7) and r.get_module_id(name) == 7
        assert r.send(name, REQ) is OK and r.send(7, REQ) is OK
        assert r.module_count() == existing + 1
        for i in range(existing):
            assert r.send("m%d" % i, REQ) is OK and r.send(100 + i, REQ) is OK


def test_queue_memory_error_leaves_the_mailbox_as_it_was():
    r = MessageRouter()
    r.register(1, "box", ok_handler, mailbox_capacity=16)
    got = []
    low = Request(0, "low").with_priority(0)
    high = Request(0, "high").with_priority(3)
    # the first queue makes the mailbox and a ring; then a ring per new priority
    for request, allocates in ((REQ, True), (REQ, False), (low, True), (high, True)):
        failed = at_each_allocation(
            lambda request=request: r.queue(1, request, got.append), lambda: router_state(r))
        assert (failed >= 1) == allocates, (request, failed)
    assert r.mailbox_size(1) == 4
    assert r.process_mailbox(1, 10) == 4
    assert len(got) == 4 and all(x is OK for x in got)


def test_unregister_memory_error_leaves_the_module_registered():
    r = MessageRouter()
    r.register(1, "doomed", ok_handler)
    answers = []
    r.queue(1, REQ, answers.append)
    r.queue(1, REQ)
    failed = at_each_allocation(lambda: r.unregister(1), lambda: (router_state(r), len(answers)))
    assert failed >= 1
    assert not r.is_registered(1) and r.messages_discarded == 1
    assert len(answers) == 1 and isinstance(answers[0], Response.Error)


def test_router_creation_memory_error():
    failed = at_each_allocation(lambda: MessageRouter(), lambda: None)
    assert failed >= 1


def test_register_unregister_churn_keeps_memory_flat():
    import gc

    if not MICROPYTHON:
        skip("needs MicroPython's gc.mem_alloc")
    r = MessageRouter()
    for i in range(30):
        r.register(i, "stay%d" % i, ok_handler)
    names = ["churn%d" % i for i in range(10)]

    def cycle():
        for i in range(10):
            r.register(1000 + i, names[i], ok_handler)
        r.queue(1000, REQ)
        for i in range(10):
            r.unregister(1000 + i)

    for _ in range(50):
        cycle()
    gc.collect()
    before = gc.mem_alloc()
    for _ in range(500):
        cycle()
    gc.collect()
    grown = gc.mem_alloc() - before
    assert grown <= 256, grown
    assert r.module_count() == 30 and r.send("stay7", REQ) is OK
