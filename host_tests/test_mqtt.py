# test_mqtt: the MQTT bridge (lib/helix_ipc/mqtt.py) against the project's mosquitto
# (tools/cluster), each test with its own broker on a free loopback port. Every test runs
# on CPython (paho-mqtt) and on the unix port (umqtt.simple), in board mode too; without
# mosquitto they skip saying so (under CI they fail: `make test` installs it).
import support
from mqtt_support import Broker, Raw, bridge, pump

from helix_ipc import Event, EventSubscription, EventTopic, Request, Response


def _collect(bus, topics=(EventTopic.TICK,)):
    got = []
    bus.subscribe(EventSubscription("probe", list(topics), got.append))
    return got


def _stats_module(router, module_id=1, name="stats"):
    calls = []

    def handler(req):
        calls.append(req)
        return Response.Success(b"uptime=42;" + req.payload)

    router.register(module_id, name, handler)
    return calls


def test_events_and_a_request_between_two_nodes():
    with Broker("A", "B") as broker:
        a, b = bridge(broker, "A"), bridge(broker, "B")
        a.export(EventTopic.TICK)
        b.listen("A")
        ticks = _collect(b.bus)
        calls = _stats_module(b.router)
        a.start()
        b.start()
        assert pump([a, b], lambda: a.peers.get("B") is True and b.peers.get("A") is True)
        a.bus.publish(Event.Tick(1000, 1))
        a.bus.publish(Event.Tick(2000, 2))
        assert pump([a, b], lambda: len(ticks) == 2), b.stats()
        assert [(t.timestamp_ns, t.tick_number) for t in ticks] == [(1000, 1), (2000, 2)]
        name = a.proxy("B", "stats")
        assert name == "B/stats"
        answers = []
        a.router.queue("B/stats", Request("me", "get", b"x"), answers.append)
        assert pump([a, b], lambda: answers, serve=[(b.router, 1)]), (a.stats(), b.stats())
        assert answers == [Response.Success(b"uptime=42;x")]
        assert len(calls) == 1 and calls[0].request_type == "get" and calls[0].sender.value == "A"
        sa, sb = a.stats(), b.stats()
        assert sa["events_out"] == 2 and sb["events_in"] == 2
        assert sa["requests_out"] == 1 and sb["requests_in"] == 1
        assert sb["responses_out"] == 1 and sa["responses_in"] == 1
        assert sa["malformed"] == 0 and sb["malformed"] == 0, (a.errors, b.errors)
        # events that came in are not sent back out: B exports TICK too, nothing echoes
        b.export(EventTopic.TICK)
        a.bus.publish(Event.Tick(3000, 3))
        assert pump([a, b], lambda: len(ticks) == 3)
        assert b.stats()["events_out"] == 0
        # a module the other node lacks: an Error answer, not a hang
        a.proxy("B", "nothing")
        a.router.queue("B/nothing", Request("me", "get"), answers.append)
        assert pump([a, b], lambda: len(answers) == 2)
        assert isinstance(answers[1], Response.Error) and "nothing" in answers[1].message
        # send() to a proxy cannot wait: it says so
        r = a.router.send("B/stats", Request("me", "get"))
        assert isinstance(r, Response.Error) and "router.request" in r.message
        a.stop()
        b.stop()


def test_wrong_credentials_get_nowhere_and_others_carry_on():
    from helix_ipc.mqtt import Refused

    with Broker("A", "B") as broker:
        a, b = bridge(broker, "A"), bridge(broker, "B")
        a.export(EventTopic.TICK)
        b.listen()
        ticks = _collect(b.bus)
        a.start()
        b.start()
        # an impostor with A's name and a wrong password, and an unknown user
        for node, pw in (("A", "wrong"), ("mallory", "x")):
            bad = bridge(broker, node, password=pw)
            e = support.raises(Refused, bad.start)
            assert e.args[0] in (4, 5), e.args
            assert bad.stats()["refused"] == 1 and not bad.connected
        # A was not kicked off by the impostor: its ticks still reach B
        a.bus.publish(Event.Tick(1, 1))
        assert pump([a, b], lambda: len(ticks) == 1), (a.stats(), b.stats())
        assert a.connected and a.stats()["disconnects"] == 0
        assert b.peers == {"A": True}
        a.stop()
        b.stop()


def test_publishing_outside_the_acl_gets_nowhere():
    from helix_ipc import wire

    with Broker("A", "B", "host") as broker:
        b, host = bridge(broker, "B"), bridge(broker, "host")
        b.listen()
        host.listen()
        calls = _stats_module(b.router)
        b_ticks, host_ticks = _collect(b.bus), _collect(host.bus)
        b.start()
        host.start()
        host.proxy("B", "stats")
        mallory = Raw(broker, "A")  # A's own credentials, used against the others
        mallory.c.subscribe("helix/+/req/B/#", 1)  # reading B's requests: not allowed
        mallory.c.subscribe("helix/+/reply/host", 1)  # nor host's answers
        tick = wire.encode(wire.event_to_obj(Event.Tick(5, 5)))
        mallory.c.publish("helix/B/event/tick", tick, 0, False)  # B's event, forged
        mallory.c.publish("helix/B/status", b"offline", 1, True)  # B's status, forged
        mallory.c.publish("helix/host/req/B", _request_bytes(1, "stats", Request("x", "get")), 1, False)  # in host's name
        mallory.c.publish("helix/B/reply/host", wire.encode([2, 1, [0, wire.b64(b"fake")]]), 1, False)  # B's answer, forged
        # the others are unaffected: host asks B and gets B's real answer
        answers = []
        host.router.queue("B/stats", Request("me", "get", b"h"), answers.append)
        assert pump([b, host, mallory], lambda: answers, serve=[(b.router, 1)])
        # and A's own event (inside its ACL) does arrive, after everything forged
        mallory.c.publish("helix/A/event/tick", wire.encode(wire.event_to_obj(Event.Tick(7, 7))), 1, False)
        assert pump([b, host, mallory], lambda: b_ticks and host_ticks)
        assert [t.tick_number for t in b_ticks] == [7] and [t.tick_number for t in host_ticks] == [7]
        assert answers == [Response.Success(b"uptime=42;h")]
        assert [c.sender.value for c in calls] == ["host"]  # the forged request never ran
        assert host.peers.get("B") is True and host.stats()["late_responses"] == 0
        assert mallory.msgs == [] or all(t.startswith("helix/A/") for t, _ in mallory.msgs), mallory.msgs
        mallory.c.close()
        b.stop()
        host.stop()


def test_broker_restart_reconnects_restores_subscriptions_and_counts_drops():
    with Broker("A", "B") as broker:
        a = bridge(broker, "A", queue_capacity=5)
        b = bridge(broker, "B")
        a.export(EventTopic.TICK)
        b.listen("A")
        ticks = _collect(b.bus)
        calls = _stats_module(b.router)
        a.proxy("B", "stats")
        a.start()
        b.start()
        assert pump([a, b], lambda: b.peers.get("A") is True and a.peers.get("B") is True)
        broker.pause()
        assert pump([a, b], lambda: not a.connected and not b.connected)
        # mosquitto publishes every client's last will as it shuts down: the nodes see
        # each other go offline (then online again after the restart), so a request made
        # now fails at once rather than waiting for a peer that may not come back
        assert pump([a, b], lambda: a.peers["B"] is False and b.peers["A"] is False)
        early = []
        a.router.queue("B/stats", Request("me", "get", b"q"), early.append)
        a.poll()
        assert len(early) == 1 and "not connected" in early[0].message, early
        for i in range(10):  # 10 ticks while the broker is away: the 5 newest stay
            a.bus.publish(Event.Tick(i, i))
        sa = a.stats()
        assert sa["queued"] == 5 and sa["queue_dropped"] == 5, sa
        broker.start_again()
        assert pump([b], lambda: b.connected, 15000)  # B first: A's queued ticks find it listening
        assert pump([a, b], lambda: len(ticks) == 5, 15000), (a.stats(), b.stats())
        assert [t.tick_number for t in ticks] == [5, 6, 7, 8, 9]
        assert a.peers["B"] is True and b.peers["A"] is True
        # requests still travel both ways: B's request subscription was restored too
        answers = []
        a.router.queue("B/stats", Request("me", "get", b"r"), answers.append)
        assert pump([a, b], lambda: answers, serve=[(b.router, 1)])
        assert answers == [Response.Success(b"uptime=42;r")] and len(calls) == 1
        for s in (a.stats(), b.stats()):
            assert s["connects"] == 2 and s["disconnects"] == 1, s
        assert a.stats()["queue_dropped"] == 5
        assert any(w == "queue full" for w, _ in a.errors) and any(w == "connection lost" for w, _ in b.errors)
        a.stop()
        b.stop()


def test_a_node_vanishing_is_seen_through_its_last_will():
    with Broker("A", "B", "host") as broker:
        a, b, host = bridge(broker, "A"), bridge(broker, "B"), bridge(broker, "host")
        seen = []
        b.status_hook = lambda node, online: seen.append(("B", node, online))
        host.status_hook = lambda node, online: seen.append(("host", node, online))
        for x in (a, b, host):
            x.start()
        assert pump([a, b, host], lambda: len(seen) == 4), seen
        assert sorted(seen) == [("B", "A", True), ("B", "host", True), ("host", "A", True), ("host", "B", True)]
        a.client.close()  # A vanishes: no DISCONNECT, no `offline` of its own
        assert pump([b, host], lambda: len(seen) == 6), seen
        assert sorted(seen[4:]) == [("B", "A", False), ("host", "A", False)]
        assert b.peers["A"] is False and host.peers == {"A": False, "B": True}
        b.stop()  # a clean stop says offline too
        assert pump([host], lambda: ("host", "B", False) in seen), seen
        # a node joining later learns A's state from the retained status
        late = bridge(broker, "B")
        late.status_hook = lambda node, online: seen.append(("late", node, online))
        late.start()
        assert pump([late, host], lambda: ("late", "A", False) in seen and host.peers["B"] is True), seen
        late.stop()
        host.stop()


def _request_bytes(cid, module, req):
    # what a requester's remote.Peer publishes: [REQ, correlation id, module, request]
    from helix_ipc import wire

    return wire.encode([1, cid, module, [req.request_type, wire.b64(req.payload), req.priority]])


def test_a_request_delivered_twice_is_answered_once():
    from helix_ipc import wire

    with Broker("A", "B") as broker:
        b = bridge(broker, "B")
        calls = _stats_module(b.router)
        b.start()
        raw = Raw(broker, "A")
        raw.c.subscribe("helix/B/reply/A", 1)
        payload = _request_bytes(77, "stats", Request("x", "get", b"1"))
        raw.c.publish("helix/A/req/B", payload, 1, False)
        raw.c.publish("helix/A/req/B", payload, 1, False)  # as MQTT may redeliver it
        assert pump([b, raw], lambda: b.stats()["duplicates"] == 1 and raw.msgs, serve=[(b.router, 1)])
        pump([b, raw], lambda: False, 300, serve=[(b.router, 1)])  # time for more answers
        assert len(calls) == 1  # run once
        replies = raw.got("helix/B/reply/A")
        # one answer; a copy of the same answer (from the cache) when the repeat came
        # after it was made: the requester takes the first, counts the other late
        assert 1 <= len(replies) <= 2 and all(r == replies[0] for r in replies), replies
        msg = wire.decode(replies[0])
        assert msg == [2, 77, [0, wire.b64(b"uptime=42;1")]]  # [RESP, id, Success(data as base64)]
        # a new id is a new request
        raw.c.publish("helix/A/req/B", _request_bytes(78, "stats", Request("x", "get", b"2")), 1, False)
        assert pump([b, raw], lambda: len(calls) == 2 and wire.decode(raw.msgs[-1][1])[1] == 78,
                    serve=[(b.router, 1)])
        assert b.stats()["duplicates"] == 1 and b.stats()["requests_in"] == 3
        raw.c.close()
        b.stop()


def test_a_request_delivered_twice_between_bridges_reaches_the_requester_once():
    with Broker("A", "B") as broker:
        a = bridge(broker, "A")
        a.client = Twice(a.client)  # every request published twice
        b = bridge(broker, "B")
        calls = _stats_module(b.router)
        a.proxy("B", "stats")
        a.start()
        b.start()
        assert pump([a, b], lambda: a.peers.get("B") is True)
        answers = []
        for i in range(3):
            a.router.queue("B/stats", Request("me", "get", bytes([48 + i])), answers.append)
        assert pump([a, b], lambda: len(answers) == 3 and b.stats()["duplicates"] == 3, serve=[(b.router, 1)])
        pump([a, b], lambda: False, 300, serve=[(b.router, 1)])
        assert [r.data for r in answers] == [b"uptime=42;0", b"uptime=42;1", b"uptime=42;2"]
        assert len(calls) == 3 and a.client.doubled == 3
        sa = a.stats()
        assert sa["responses_in"] == 3 and b.stats()["responses_out"] == 3
        a.stop()
        b.stop()


class Twice:
    """A client adapter that publishes every request twice (MQTT's at-least-once)."""

    def __init__(self, inner):
        self.inner = inner
        self.doubled = 0

    def publish(self, topic, payload, qos, retain):
        self.inner.publish(topic, payload, qos, retain)
        if "/req/" in topic:
            self.doubled += 1
            self.inner.publish(topic, payload, qos, retain)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_a_malformed_payload_is_dropped_counted_and_never_executed():
    import os

    from helix_ipc import wire

    marker = "/tmp/helix-mqtt-pwned-%d" % (os.getpid() if hasattr(os, "getpid") else 0)
    code = "__import__('os').system('touch %s')" % marker
    with Broker("A", "B") as broker:
        b = bridge(broker, "B")
        b.listen()
        events = _collect(b.bus, (EventTopic.ALL,))
        calls = _stats_module(b.router)
        b.start()
        raw = Raw(broker, "A")
        raw.c.subscribe("helix/B/reply/A", 1)
        bad = [
            ("helix/A/event/tick", b"\xff\x00garbage"),  # not JSON
            ("helix/A/event/tick", code.encode()),  # code as text: never evaluated
            ("helix/A/event/tick", wire.encode(code)),  # a JSON str, not an event
            ("helix/A/event/tick", wire.encode([99, 1, 2])),  # no such event kind
            ("helix/A/event/shutdown", wire.encode(wire.event_to_obj(Event.Tick(1, 1)))),  # wrong topic
            ("helix/A/event/tick", wire.encode(wire.event_to_obj(Event.Tick(1, 1)))[:-1]),  # truncated
            ("helix/A/req/B", wire.encode([1, 2, 3])),  # not a request
            ("helix/A/req/B", code.encode()),
            ("helix/A/req/B", _request_bytes(5, "stats", Request("x", "get"))[:-2]),  # truncated
            ("helix/A/req/B", wire.encode([2, 5, [0, wire.b64(b"x")]])),  # an answer on the request topic
            ("helix/A/req/B", wire.encode([4, [0, 6]])),  # a subscription announcement: not here
            ("helix/A/req/B", wire.encode([3, wire.event_to_obj(Event.Tick(1, 1))])),  # an event: not here
            ("helix/A/reply/B", wire.encode([2, 5, [0, wire.b64(b"x")]])),  # an answer B never asked for
            ("helix/A/status", b"maybe"),
        ]
        for topic, payload in bad:
            raw.c.publish(topic, payload, 1, False)
        # all malformed but the last answer: by then B has a link to A (the truncated
        # request made it), which counts an answer for no request of its own as late
        assert pump([b, raw], lambda: b.stats()["malformed"] == len(bad) - 1 and b.stats()["late_responses"] == 1,
                    serve=[(b.router, 1)]), (b.stats(), b.errors)
        # still serving: a valid request after all that is answered
        raw.c.publish("helix/A/req/B", _request_bytes(9, "stats", Request("x", "get", b"ok")), 1, False)
        assert pump([b, raw], lambda: raw.got("helix/B/reply/A"), serve=[(b.router, 1)])
        assert len(raw.got("helix/B/reply/A")) == 1 and len(calls) == 1 and calls[0].payload == b"ok"
        assert events == [] and b.stats()["events_in"] == 0
        assert b.stats()["malformed"] == len(bad) - 1 and len(b.errors) == len(bad), b.errors
        try:
            os.stat(marker)
            raise AssertionError("the payload was executed")
        except OSError:
            pass
        raw.c.close()
        b.stop()


def test_router_request_across_nodes_in_asyncio_with_deadlines():
    try:
        import asyncio
    except ImportError:
        support.skip("needs asyncio")
    from helix_ipc import Timeout

    with Broker("A", "B", "C") as broker:
        a = bridge(broker, "A", request_timeout_ms=400)
        b = bridge(broker, "B")
        _stats_module(b.router)
        a.proxy("B", "stats")
        a.proxy("C", "stats")
        c = Raw(broker, "C")  # online, but never answers
        c.c.publish("helix/C/status", b"online", 1, True)
        out = {}

        async def main():
            a.start()
            b.start()
            tasks = [asyncio.create_task(a.run()), asyncio.create_task(b.run()),
                     asyncio.create_task(b.router.serve(1))]
            try:
                for _ in range(500):
                    if a.peers.get("B") and a.peers.get("C"):
                        break
                    await asyncio.sleep(0.01)
                out["r"] = await a.router.request("B/stats", Request("me", "get", b"aio"), timeout_ms=5000)
                try:
                    await a.router.request("C/stats", Request("me", "get"), timeout_ms=100)
                    out["c"] = "answered"
                except Timeout:
                    out["c"] = "timeout"
                await asyncio.sleep(0.6)  # the link's own deadline passes too: answered late
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.sleep(0)

        asyncio.run(main())
        assert out["r"] == Response.Success(b"uptime=42;aio")
        assert out["c"] == "timeout"
        s = a.stats()
        assert s["timeouts"] == 1 and s["pending"] == 0 and s["links"]["C"]["timeouts"] == 1, s
        assert a.router.late_responses == 1  # the link's Error for the request given up on
        c.c.close()
        a.stop()
        b.stop()


def test_a_peer_going_offline_fails_its_pending_requests_at_once():
    with Broker("A", "host") as broker:
        a = bridge(broker, "A")
        a.router.register(1, "slow", lambda req: Response.ok())  # never served: no answer
        host = bridge(broker, "host", request_timeout_ms=60000)
        host.proxy("A", "slow")
        a.start()
        host.start()
        assert pump([a, host], lambda: host.peers.get("A") is True)
        answers = []
        host.router.queue("A/slow", Request("me", "get"), answers.append)
        assert pump([a, host], lambda: a.router.mailbox_size(1) == 1)  # it arrived, unanswered
        a.client.close()  # A vanishes; its last will says offline
        assert pump([host], lambda: answers, 10000)
        assert isinstance(answers[0], Response.Error) and "offline" in answers[0].message, answers
        s = host.stats()
        assert s["link_failures"] == 1 and s["pending"] == 0 and s["timeouts"] == 0
        # and one queued after that fails at once: A is not there
        host.router.queue("A/slow", Request("me", "get"), answers.append)
        assert pump([host], lambda: len(answers) == 2, 1000)
        assert isinstance(answers[1], Response.Error) and "not connected" in answers[1].message
        host.stop()


def test_a_link_gone_silent_is_noticed_by_both_ends():
    # A reaches the broker through a forwarder that then goes silent (a Wi-Fi link
    # dying without a word): A notices within its keepalive and reconnects (through the
    # forwarder, which carries new connections); the broker publishes A's last will
    # (its keepalive running out, or A's new connection taking the session over), which
    # B sees, then A's `online` again.
    from helix_ipc import EventBus, MessageRouter
    from helix_ipc.mqtt import Bridge, client_for
    from mqtt_support import FreezeProxy

    broker = Broker("A", "B")
    proxy = None
    try:
        proxy = FreezeProxy(broker)
        a = Bridge("A", client_for("127.0.0.1", proxy.port, "A", broker.password("A"), 2),
                   EventBus(), MessageRouter())
        a.errors = []
        a.error_hook = lambda where, error: a.errors.append((where, str(error)))
        b = bridge(broker, "B")
        seen = []
        b.status_hook = lambda node, online: seen.append((node, online))
        a.start()
        b.start()
        assert pump([a, b], lambda: seen == [("A", True)]), seen
        proxy.freeze()
        assert pump([a, b], lambda: a.stats()["disconnects"] == 1 and ("A", False) in seen, 15000), (
            a.stats(), seen, a.errors)
        assert [w for w, _ in a.errors][:1] == ["connection lost"], a.errors
        assert pump([a, b], lambda: a.connected and seen[-1] == ("A", True), 15000), (a.stats(), seen)
        assert a.stats()["connects"] == 2
        a.stop()
        b.stop()
    finally:
        if proxy is not None:
            proxy.stop()
        broker.stop()


def test_an_oversized_message_is_refused_by_the_broker_and_others_carry_on():
    with Broker("A", "B") as broker:
        b = bridge(broker, "B")
        b.listen()
        calls = _stats_module(b.router)
        b.start()
        big = Raw(broker, "A")
        try:
            big.c.publish("helix/A/event/tick", b"x" * 20000, 1, False)  # over max_packet_size
            pump([big], lambda: False, 500)
            raised = False
        except OSError:
            raised = True  # the broker closed A's connection
        # B received nothing of it, and still answers A's requests on a new connection
        raw = Raw(broker, "A")
        raw.c.subscribe("helix/B/reply/A", 1)
        raw.c.publish("helix/A/req/B", _request_bytes(1, "stats", Request("x", "get", b"s")), 1, False)
        assert pump([b, raw], lambda: raw.got("helix/B/reply/A"), serve=[(b.router, 1)])
        assert b.stats()["events_in"] == 0 and b.stats()["malformed"] == 0 and len(calls) == 1, b.stats()
        assert raised  # A's connection was closed by the broker
        raw.c.close()
        b.stop()


def test_an_idle_turn_of_a_connected_bridge_allocates_nothing():
    # what a board's bridge task costs while nothing happens: no garbage per turn
    # (MicroPython: micropython.mem_total; CPython skips)
    support.frame_alloc(lambda: None)  # skips here first where allocation cannot be counted
    with Broker("A", "B") as broker:
        a, b = bridge(broker, "A"), bridge(broker, "B")
        a.export(EventTopic.TICK)
        a.listen()
        a.start()
        b.start()
        assert pump([a, b], lambda: a.peers.get("B") is True)
        pump([a], lambda: False, 200)
        assert support.frame_alloc(a.poll) == 0
        assert a.connected and a.stats()["disconnects"] == 0
        a.stop()
        b.stop()
