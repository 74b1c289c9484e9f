# Tests for helix_ipc.remote: two Peers wired back to back in memory (no transport), on
# every interpreter: requests with correlation ids and deadlines, proxies in the router,
# duplicate and late answers, announced subscriptions, bounded queues, lost links.
from support import raises

from helix_ipc import Event, EventBus, EventSubscription, EventTopic, MessageRouter, Request, Response, Timeout
from helix_ipc import remote, remote_out, wire


class Pair:
    """host <-> board: each Peer's send appends to the other's inbox; pump() delivers."""

    def __init__(self, out_capacity=16):
        self.hr, self.hb = MessageRouter(), EventBus()
        self.br, self.bb = MessageRouter(), EventBus()
        self.to_board, self.to_host = [], []
        self.host = remote.Peer(self.hr, self.hb, self.to_board.append, "host", "pico/", out_capacity)
        self.board = remote.Peer(self.br, self.bb, self.to_host.append, "pico", "", out_capacity)
        self.board.connected("host")
        self.host.connected("pico")
        self.pump()

    def pump(self, serve_board=True):
        for _ in range(20):
            if serve_board:
                for mid in list(self.br._ids):
                    self.br.process_mailbox(mid, 100)
            self.host.service()
            self.board.service()
            moved = bool(self.to_board or self.to_host)
            while self.to_board:
                self.board.receive(self.to_board.pop(0))
            while self.to_host:
                self.host.receive(self.to_host.pop(0))
            if not moved:
                return


def _stats_module(router):
    calls = []

    def handler(req):
        calls.append(req)
        if req.request_type == "get":
            return Response.Success(b"n=" + req.payload)
        if req.request_type == "no":
            return Response.Rejected("not now")
        raise ValueError("boom")

    router.register(1, "stats", handler)
    return calls


def test_queue_request_round_trip_with_correlation_ids():
    p = Pair()
    calls = _stats_module(p.br)
    res = {}

    def cb(k):
        return lambda r: res.__setitem__(k, res.get(k, ()) + (r,))

    c1 = p.host.queue("stats", Request("host", "get", b"1"), cb(0))
    c2 = p.host.queue("stats", Request("host", "no").with_priority(3), cb(1))
    c3 = p.host.queue("stats", Request("host", "bad"), cb(2))
    c4 = p.host.queue("nothere", Request("host", "get"), cb(3))
    assert len(set((c1, c2, c3, c4))) == 4
    p.pump()
    assert sorted(res) == [0, 1, 2, 3] and all(len(v) == 1 for v in res.values())  # each exactly once
    got = [res[k][0] for k in range(4)]
    assert got[0] == Response.Success(b"n=1") and got[1] == Response.Rejected("not now")
    assert isinstance(got[2], Response.Error) and "boom" in got[2].message
    assert isinstance(got[3], Response.Error) and "nothere" in got[3].message
    assert calls[0].priority == 3 and calls[0].sender.value == "host"  # the mailbox's priority order
    s = p.host.stats()
    assert s["requests_out"] == 4 and s["responses_in"] == 4 and s["pending"] == 0
    assert p.board.stats()["requests_in"] == 4 and p.board.stats()["responses_out"] == 4


def test_proxy_module_in_the_local_router():
    import asyncio

    p = Pair()
    _stats_module(p.br)
    mid = p.host.proxy("stats")
    assert p.hr.get_module_id("pico/stats") == mid and mid >= 1000
    r = p.hr.send("pico/stats", Request("me", "get"))
    assert isinstance(r, Response.Error) and "router.request()" in r.message and "router.queue()" in r.message
    got = []
    p.hr.queue("pico/stats", Request("me", "get", b"7"), got.append)
    p.pump()
    assert got == [Response.Success(b"n=7")]

    async def main():
        async def pumper():
            while True:
                p.pump()
                await asyncio.sleep(0.001)

        t = asyncio.create_task(pumper())
        try:
            return await p.hr.request("pico/stats", Request("me", "get", b"9"), timeout_ms=2000)
        finally:
            t.cancel()

    assert asyncio.run(main()) == Response.Success(b"n=9")
    p.host.unproxy()
    assert p.hr.get_module_id("pico/stats") is None


def test_await_peer_request_timeout_and_late_answer_counted():
    import asyncio

    p = Pair()
    _stats_module(p.br)

    async def main():
        # the board never gets to answer before the deadline (nobody pumps)
        try:
            await p.host.request("stats", Request("h", "get", b"1"), timeout_ms=30)
        except Timeout as e:
            return e
        return None

    e = asyncio.run(main())
    assert isinstance(e, Timeout)
    assert p.host.stats()["pending"] == 0 and p.host.timeouts == 1
    p.pump()  # now the answer comes: late, dropped and counted
    assert p.host.late_responses == 1


def test_queue_deadline_gives_error_once():
    import time

    p = Pair()
    _stats_module(p.br)
    got = []
    p.host.queue("stats", Request("h", "get"), got.append, timeout_ms=5)
    p.host.service()  # sent, but the board never answers in time
    p.to_board.clear()
    time.sleep(0.02)
    p.host.service()
    assert len(got) == 1 and isinstance(got[0], Response.Error) and "deadline" in got[0].message
    p.host.service()
    assert len(got) == 1 and p.host.timeouts == 1


def test_duplicate_request_answered_once_from_cache():
    p = Pair()
    calls = _stats_module(p.br)
    msg = wire.encode([remote.REQ, 77, "stats", ["get", wire.b64(b"x"), 1]])
    p.board.receive(msg)
    p.board.receive(msg)  # in progress: not run again, nothing sent yet
    p.br.process_mailbox(1, 10)
    p.board.service()
    assert len(p.to_host) == 1
    p.board.receive(msg)  # answered: the cached answer again
    p.board.service()
    assert len(p.to_host) == 2 and p.to_host[0] == p.to_host[1]
    assert len(calls) == 1 and p.board.duplicates == 2
    assert wire.decode(p.to_host[0]) == [remote.RESP, 77, [0, wire.b64(b"n=x")]]
    p.to_host.clear()
    # the cache is bounded: an old cid comes back after CACHE others and runs again
    for cid in range(100, 100 + remote.CACHE):
        p.board.receive(wire.encode([remote.REQ, cid, "stats", ["get", "", 1]]))
    p.board.receive(msg)
    p.br.process_mailbox(1, 100)
    assert len(calls) == 2 + remote.CACHE


def test_a_repeated_request_whose_answer_finds_the_queue_full_is_counted():
    # the cached answer goes out through the same bounded queue as any answer: when it is
    # full, the resend is dropped and counted (out_dropped), never queued past the bound
    p = Pair(out_capacity=5)
    calls = _stats_module(p.br)
    first = wire.encode([remote.REQ, 1, "stats", ["get", "", 1]])
    p.board.receive(first)
    p.br.process_mailbox(1, 10)
    p.board.service()
    assert len(p.to_host) == 1 and len(calls) == 1
    for cid in range(2, 7):  # five more answers fill the board's queue (nothing serviced)
        p.board.receive(wire.encode([remote.REQ, cid, "stats", ["get", "", 1]]))
    p.br.process_mailbox(1, 10)
    assert p.board.stats()["queued"] == 5
    dropped = p.board.out_dropped
    p.board.receive(first)  # answered already: its answer again, but the queue is full
    assert p.board.duplicates == 1 and p.board.out_dropped == dropped + 1
    assert p.board.stats()["queued"] == 5 and len(calls) == 6


def test_answer_for_unknown_cid_is_late():
    p = Pair()
    n = p.host.received
    p.host.receive(wire.encode([remote.RESP, 12345, [0, ""]]))
    assert p.host.late_responses == 1 and p.host.received == n + 1


def test_malformed_messages_counted_never_raise():
    p = Pair()
    seen = []
    p.board.error_hook = lambda where, err: seen.append(where)
    bad = [b"", b"\xff", wire.encode(5), wire.encode([]), wire.encode(["x"]), wire.encode([99, 1]),
           wire.encode([remote.REQ, 1, "m"]), wire.encode([remote.REQ, "1", "m", ["t", "", 1]]),
           wire.encode([remote.EVT, [99]]), wire.encode([remote.SUBS, [None]]), wire.encode([remote.SUBS, 3]),
           wire.encode([remote.RESP, 1]), b"[1, 2", b"[2, 1, [0, \"x\"]] x", b"[" * 5000,
           b"[" * 3000 + b"]" * 3000, wire.encode({"k": 1}), wire.encode([remote.EVT, [7, "n", "a"]])]
    for b in bad:
        p.board.receive(b)
    assert p.board.malformed == len(bad), p.board.stats()
    assert len(seen) == len(bad)
    # a request with bad fields is answered with an error (the requester is not left waiting)
    p.board.receive(wire.encode([remote.REQ, 5, "m", ["", "", 1]]))
    p.board.service()
    r = wire.decode(p.to_host.pop())
    assert r[0] == remote.RESP and r[1] == 5 and r[2][0] == 2
    p.board.receive(wire.encode([remote.REQ, 6, "m", ["t", "a", 1]]))  # a payload that is not base64
    p.board.service()
    r = wire.decode(p.to_host.pop())
    assert r[0] == remote.RESP and r[1] == 6 and r[2][0] == 2


def test_events_cross_only_for_announced_topics():
    p = Pair()
    got = []
    p.hb.subscribe(EventSubscription("h", [EventTopic.ALL], got.append))
    p.bb.publish(Event.Tick(1, 1))
    p.pump()
    assert got == [] and p.board.events_out == 0  # nobody on the host asked for ticks
    p.host.subscribe([EventTopic.TICK, EventTopic.Custom("temp")])
    p.pump()
    assert p.board.remote_wants and p.board._fwd is not None
    p.bb.publish(Event.Tick(2, 2))
    p.bb.publish(Event.Custom("temp", b"\x15"))
    p.bb.publish(Event.Custom("other", b""))
    p.bb.publish(Event.Shutdown())
    p.pump()
    assert got == [Event.Tick(2, 2), Event.Custom("temp", b"\x15")]
    assert p.board.events_out == 2 and p.host.events_in == 2
    # received on the host: never echoed back, even when the board subscribes to the same topic
    back = []
    p.bb.subscribe(EventSubscription("b", [EventTopic.TICK], back.append))
    p.board.subscribe([EventTopic.TICK])
    p.pump()
    p.bb.publish(Event.Tick(3, 3))
    p.pump()
    assert back == [Event.Tick(3, 3)]
    assert got[-1] == Event.Tick(3, 3) and p.host.events_out == 0
    # host publishes to the board: only on topics the board announced
    assert p.host.publish(Event.Tick(9, 9)) is True
    assert p.host.publish(Event.Shutdown()) is False
    p.pump()
    assert back[-1] == Event.Tick(9, 9)
    p.host.unsubscribe([EventTopic.TICK, EventTopic.Custom("temp")])
    p.pump()
    n = len(got)
    p.bb.publish(Event.Tick(4, 4))
    p.pump()
    assert p.board.events_out == 3 and Event.Tick(4, 4) not in got[n:]  # 2 + Tick(3, 3); not after unsubscribe


def test_unwanted_event_dropped_and_counted():
    p = Pair()
    got = []
    p.hb.subscribe(EventSubscription("h", [EventTopic.ALL], got.append))
    p.host.receive(wire.encode([remote.EVT, wire.event_to_obj(Event.Tick(1, 1))]))
    assert got == [] and p.host.events_unwanted == 1


def test_bounded_queue_events_never_block_answers():
    p = Pair(out_capacity=8)
    _stats_module(p.br)
    p.host.subscribe([EventTopic.TICK])
    p.pump()
    for i in range(20):
        p.bb.publish(Event.Tick(i, i))
    assert len(p.board._out) == 8 - remote.RESERVE
    assert p.board.events_dropped == 20 - (8 - remote.RESERVE)
    got = []
    p.host.queue("stats", Request("h", "get"), got.append)
    p.pump()
    assert got == [Response.Success(b"n=")]
    # a full queue fails a request at once, with a clear error
    hold = []
    for i in range(10):
        p.host.queue("stats", Request("h", "get"), hold.append)
    assert len(hold) == 2 and all("queue full" in r.message for r in hold)
    assert p.host.out_dropped == 2


def test_link_lost_fails_pending_and_stops_forwarding():
    import asyncio

    p = Pair()
    _stats_module(p.br)
    p.host.subscribe([EventTopic.TICK])
    p.pump()
    got = []
    p.host.queue("stats", Request("h", "get"), got.append)
    p.host.service()

    async def main():
        async def drop():
            await asyncio.sleep(0.01)
            p.host.disconnected("board reset")

        asyncio.create_task(drop())
        try:
            await p.host.request("stats", Request("h", "get"), timeout_ms=5000)
        except remote_out.LinkDown as e:
            return e

    e = asyncio.run(main())
    assert isinstance(e, remote_out.LinkDown) and "board reset" in str(e)
    assert len(got) == 1 and "lost: board reset" in got[0].message
    assert p.host.link_failures == 2 and p.host.stats()["pending"] == 0
    # not connected: fails at once
    p.host.queue("stats", Request("h", "get"), got.append)
    assert "not connected" in got[-1].message
    p.board.disconnected("host left")
    p.to_host.clear()
    p.bb.publish(Event.Tick(1, 1))
    assert p.board._out == [] and p.board._fwd is None
    # reconnection: subscriptions announced again
    p.board.connected("host")
    p.host.connected("pico")
    p.pump()
    p.bb.publish(Event.Tick(2, 2))
    gotev = []
    p.hb.subscribe(EventSubscription("h", [EventTopic.TICK], gotev.append))
    p.pump()
    assert gotev == [Event.Tick(2, 2)]


def test_send_errors_counted():
    def broken(b):
        raise OSError(5)

    r, b = MessageRouter(), EventBus()
    peer = remote.Peer(r, b, broken)
    peer.connected("x")
    assert peer.flush() == 0 and peer.send_errors == 1
    raises(ValueError, remote.Peer, r, b, broken, "n", "", 3)


def test_an_idle_service_turn_allocates_nothing_and_a_queued_request_is_still_sent():
    # A transport calls service() every turn (the MQTT bridge every few ms): with proxies
    # and nothing to do it must allocate nothing (no frame, no import), yet a request a
    # proxy mailbox got from another context is turned into a message by the next turn.
    import support

    p = Pair()
    p.host.proxy("stats")
    p.br.register(5, "stats", lambda r: Response.Success(b"ok"))
    p.pump()
    got = []
    p.hr.queue("pico/stats", Request("t", "get"), got.append)  # the proxy's notify marks it
    p.pump()
    assert len(got) == 1 and got[0].is_success, got
    assert support.frame_alloc(p.host.service) == 0
    assert support.frame_alloc(p.board.service) == 0


def test_counting_allocates_nothing_and_a_failing_hook_is_still_contained():
    # _count runs several times per message: its frame must stay off the heap (the
    # error hook's try block is a function of its own)
    import support

    p = Pair()
    assert support.frame_alloc(p.host._count, 1) == 0
    seen = []

    def hook(where, error):
        seen.append(where)
        raise RuntimeError("hook fails")

    p.host.error_hook = hook
    p.host._count(2, "message", None)
    assert seen == ["message"] and p.host.malformed == 1
