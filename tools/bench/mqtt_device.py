# tools/bench/mqtt_device.py: the MQTT bench rows, run by the MicroPython unix port
# (tools/bench/mqtt_bench.py starts it with the broker running):
#
#   micropython tools/bench/mqtt_device.py HOME [--board] [--events N] [--requests N]
#
# One process, two nodes A and B on one local broker, polled in turn (no sleeping), so
# every row has the same loop shape as its floor, measured right before it (rates: best
# of --repeats 7, floor and row alternating; round trips: 3 x --requests 300 pooled):
#   bare publish loop      umqtt MQTTClient.publish QoS 0, N times (nothing received)
#   bare publish->receive  the same in batches of 16, a second bare client receiving
#                          them with check_msg, until all N arrived
#   bridge events          Event.Tick published on A's bus, exported by A's Bridge,
#                          received by B's Bridge into B's bus, until all N arrived
#   bare round trip        bare client A publishes a request (QoS 1), bare B answers it
#                          (QoS 1), A receives the answer: each trip timed with ticks_us
#   bridge round trip      router.queue("B/stats") on A, B's module answers
#                          (process_mailbox), the callback runs on A: each trip timed
#   bridge alone           the export and the import path with a client that does
#                          nothing: the bridge's own time and heap bytes per event
# Prints one JSON line per row: {"name", "ns_per_op", "per_s" | "median_us", "p99_us"}.
import sys

_here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
ROOT = _here + "/../.."
sys.path.insert(0, ROOT + "/host_tests")
sys.path.insert(0, ROOT + "/lib")
sys.path.append(ROOT + "/.venv/mplib")

BOARD = "--board" in sys.argv
if BOARD:
    import support

    support.enter_board_mode()

import json  # noqa: E402
import time  # noqa: E402

from umqtt.simple import MQTTClient  # noqa: E402

from helix_ipc import Event, EventBus, EventSubscription, EventTopic, MessageRouter, Request, Response, wire  # noqa: E402
from helix_ipc._compat import ticks_diff, ticks_us  # noqa: E402
from helix_ipc.mqtt import Bridge, client_for, nodelay  # noqa: E402


def mem_total():
    import micropython

    return micropython.mem_total() if hasattr(micropython, "mem_total") else 0


def arg(name, default):
    return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


HOME = sys.argv[1]
N_EVENTS = arg("--events", 2000)
N_REQUESTS = arg("--requests", 300)
REPEATS = arg("--repeats", 7)
BARE_TX = "mqtt: bare umqtt publish loop (QoS 0)"
BARE_RX = "mqtt: bare publish -> bare receive (QoS 0)"
EVENTS = "mqtt: event A bus -> bridge -> broker -> bridge -> B bus"
BARE_RTT = "mqtt: bare request/answer round trip (QoS 1)"
RTT = "mqtt: router.queue('B/stats') round trip (QoS 1)"
EXPORT = "mqtt: bridge alone, export (publish -> encode -> client)"
IMPORT = "mqtt: bridge alone, import (client -> decode -> bus)"
with open(HOME + "/broker.json") as f:
    STATE = json.load(f)
PORT = STATE["port"]
USERS = STATE["users"]
# the floors send what the bridge rows send, byte for byte in size: an encoded tick (the
# rows' numbers run up to N_EVENTS), and a request to "stats" and its answer
PAYLOAD = wire.encode(wire.event_to_obj(Event.Tick(N_EVENTS, N_EVENTS)))
REQUEST = wire.encode([1, 12345, "stats", ["get", "", 1]])  # remote.Peer's [REQ, cid, module, request]
ANSWER = wire.encode([2, 12345, wire.response_to_obj(Response.Success(b"ok"))])  # [RESP, cid, response]


def out(row):
    print(json.dumps(row))


def bare(node, suffix, cb=None):
    c = MQTTClient(node + suffix, "127.0.0.1", PORT, node, USERS[node], 30)
    c.set_callback(cb or (lambda t, m: None))
    c.connect()
    nodelay(c.sock)  # as the bridge's adapter does: a fair floor
    return c


def drain(c, want, box):
    # check_msg until box[0] reaches want (or 5 s pass without progress)
    last, t0 = box[0], time.ticks_ms()
    while box[0] < want:
        c.check_msg()
        if box[0] != last:
            last, t0 = box[0], time.ticks_ms()
        elif time.ticks_diff(time.ticks_ms(), t0) > 5000:
            raise SystemExit("bench: only %d of %d arrived" % (box[0], want))


class Counter:
    def __init__(self):
        self.box = [0]

    def __call__(self, topic, msg):
        self.box[0] += 1


TICK_TOPIC = b"helix/A/event/tick"


def bare_pair():
    # (subscriber B counting what arrives on TICK_TOPIC, publisher A, B's count box)
    cnt = Counter()
    s = bare("B", "-sub", cnt)
    s.subscribe(TICK_TOPIC, 0)
    return s, bare("A", "-pub"), cnt.box


def bare_publish_loop(n):
    s, p, got = bare_pair()
    pub = p.publish
    topic = TICK_TOPIC
    t0 = ticks_us()
    for _ in range(n):
        pub(topic, PAYLOAD)
    dt = ticks_diff(ticks_us(), t0)
    drain(s, n, got)  # all of them did arrive (not timed)
    p.disconnect()
    s.disconnect()
    return dt


def bare_publish_receive(n):
    s, p, got = bare_pair()
    pub = p.publish
    topic = TICK_TOPIC
    sent = 0
    t0 = ticks_us()
    while got[0] < n:
        k = min(16, n - sent)
        for _ in range(k):
            pub(topic, PAYLOAD)
        sent += k
        drain(s, sent, got)
    dt = ticks_diff(ticks_us(), t0)
    p.disconnect()
    s.disconnect()
    return dt


def nodes():
    a = Bridge("A", client_for("127.0.0.1", PORT, "A", USERS["A"], 30), EventBus(), MessageRouter())
    b = Bridge("B", client_for("127.0.0.1", PORT, "B", USERS["B"], 30), EventBus(), MessageRouter())
    return a, b


def bridge_events(n):
    a, b = nodes()
    a.export(EventTopic.TICK)
    b.listen("A", [EventTopic.TICK])
    got = [0]

    def on_tick(e):
        got[0] += 1

    b.bus.subscribe(EventSubscription("count", [EventTopic.TICK], on_tick))
    a.start()
    b.start()
    for _ in range(50):
        a.poll()
        b.poll()
    publish = a.bus.publish
    sent = 0
    t0 = ticks_us()
    last, stall = 0, 0
    while got[0] < n:
        k = min(16, n - sent)
        for i in range(k):
            publish(Event.Tick(sent + i, sent + i))
        sent += k
        a.poll()
        while got[0] < sent:
            b.poll()
            if got[0] == last:
                stall += 1
                if stall > 200000:
                    raise SystemExit("bench: bridge events stalled at %d of %d: %r" % (got[0], n, b.stats()))
            else:
                last, stall = got[0], 0
    dt = ticks_diff(ticks_us(), t0)
    s = a.stats()
    if s["queue_dropped"] or b.stats()["inbox_dropped"]:
        raise SystemExit("bench: drops %r %r" % (s, b.stats()))
    a.stop()
    b.stop()
    return dt


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def bare_round_trip(n):
    box = {"a": 0, "b": None}

    def on_b(t, m):
        box["b"] = m

    def on_a(t, m):
        box["a"] += 1

    b = bare("B", "-rt", on_b)
    b.subscribe(b"helix/+/req/B", 1)
    a = bare("A", "-rt", on_a)
    a.subscribe(b"helix/+/reply/A", 1)
    times = []
    for i in range(n):
        t0 = ticks_us()
        a.publish(b"helix/A/req/B", REQUEST, False, 1)
        while box["b"] is None:
            b.check_msg()
        box["b"] = None
        b.publish(b"helix/B/reply/A", ANSWER, False, 1)
        while box["a"] <= i:
            a.check_msg()
        times.append(ticks_diff(ticks_us(), t0))
    a.disconnect()
    b.disconnect()
    return times


def bridge_round_trip(n):
    a, b = nodes()
    b.router.register(1, "stats", lambda req: Response.Success(b"ok"))
    a.proxy("B", "stats")
    a.start()
    b.start()
    while not a.peers.get("B"):
        a.poll()
        b.poll()
    answers = []
    queue = a.router.queue
    times = []
    for i in range(n):
        t0 = ticks_us()
        queue("B/stats", Request("bench", "get"), answers.append)
        while len(answers) <= i:
            a.poll()
            b.poll()
            b.router.process_mailbox(1, 8)
        times.append(ticks_diff(ticks_us(), t0))
    if any(r != Response.Success(b"ok") for r in answers):
        raise SystemExit("bench: a request failed: %r" % [r for r in answers if not r.is_success][:3])
    a.stop()
    b.stop()
    return times


class NullClient:
    # the adapter interface doing nothing: the bridge's own cost, no network
    def connect(self, will_topic, will_payload, deliver):
        self.deliver = deliver

    def publish(self, topic, payload, qos, retain):
        pass

    def subscribe(self, topic, qos):
        pass

    def poll(self, max_messages):
        pass

    def ping(self):
        pass

    def close(self):
        pass

    def disconnect(self):
        pass


def bridge_only(n):
    # export: bus.publish -> export handler (encode, queue) -> flush (client.publish);
    # import: a received tick (as the client delivers it) -> decode -> B's bus handler.
    # Heap bytes per event from micropython.mem_total (0 where the build lacks it).
    from helix_ipc import wire

    a = Bridge("A", NullClient(), EventBus(), MessageRouter(), 32, 16)
    a.export(EventTopic.TICK)
    a.start()
    b = Bridge("B", NullClient(), EventBus(), MessageRouter(), 32, 16)
    b.listen("A", [EventTopic.TICK])
    b.bus.subscribe(EventSubscription("count", [EventTopic.TICK], lambda e: None))
    b.start()
    ev = Event.Tick(123456789, 42)
    publish, flush = a.bus.publish, a._flush
    topic = b"helix/A/event/tick"
    payload = wire.encode(wire.event_to_obj(ev))
    deliver, handle = b._deliver, b._handle_inbox
    res = []
    for k in range(2):
        best, alloc = None, 0
        for _ in range(REPEATS):
            m0 = mem_total()
            t0 = ticks_us()
            if k == 0:
                for _ in range(n):
                    publish(ev)
                    flush()
            else:
                for _ in range(n):
                    deliver(topic, payload)
                    handle()
            dt = ticks_diff(ticks_us(), t0)
            alloc = (mem_total() - m0) // n
            best = dt if best is None or dt < best else best
        res.append((best, alloc))
    if b.stats()["events_in"] != REPEATS * n or a.stats()["published"] != REPEATS * n:
        raise SystemExit("bench: bridge alone: %d published, %d received of %d" % (
            a.stats()["published"], b.stats()["events_in"], REPEATS * n))
    return res


def main():
    # floors and rows alternate, best of REPEATS for the rates; the round trips pool
    # every repeat's trips for the median and p99
    tx, rx, ev, bare_t, rt_t = [], [], [], [], []
    for _ in range(REPEATS):
        tx.append(bare_publish_loop(N_EVENTS))
        rx.append(bare_publish_receive(N_EVENTS))
        ev.append(bridge_events(N_EVENTS))
    (ex_dt, ex_b), (im_dt, im_b) = bridge_only(N_EVENTS)
    out({"name": EXPORT, "ns_per_op": ex_dt * 1000 // N_EVENTS, "bytes_per_op": ex_b})
    out({"name": IMPORT, "ns_per_op": im_dt * 1000 // N_EVENTS, "bytes_per_op": im_b})
    for _ in range(3):
        bare_t += bare_round_trip(N_REQUESTS)
        rt_t += bridge_round_trip(N_REQUESTS)
    for name, dts in ((BARE_TX, tx), (BARE_RX, rx), (EVENTS, ev)):
        dt = min(dts)
        out({"name": name, "ns_per_op": dt * 1000 // N_EVENTS, "per_s": N_EVENTS * 1000000 // dt,
             "repeats": len(dts)})
    for name, t in ((BARE_RTT, bare_t), (RTT, rt_t)):
        out({"name": name, "median_us": pct(t, 0.5), "p99_us": pct(t, 0.99), "ns_per_op": pct(t, 0.5) * 1000,
             "trips": len(t)})
    if BOARD:
        problems = support.board_mode_problems()
        out({"board_mode": not problems, "problems": problems})


main()
