# Allocation proofs on the MicroPython unix port: send by id / by name / by address,
# and steady-state queue + process_mailbox, run under heap_lock (support.assert_no_alloc).
# A prebuilt Request and a handler returning a prebuilt Response must allocate nothing.
from support import assert_no_alloc, need_heap_lock, raises, skip

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
