# tools/cluster/demo.py: `make demo-cluster` (CPython; it is the host node).
#
# mosquitto on 127.0.0.1 (a free port, the project's config, fresh passwords), two
# virtual boards (MicroPython unix port processes running tools/cluster/board_node.py:
# A ticks at 5 Hz, B listens and serves "stats") and this process as the host node
# (paho-mqtt). Ticks from A reach B and the host; the host asks B for its stats over MQTT
# (`await router.request("B/stats", ...)`) and prints the answer; board A is killed (it
# vanishes: no goodbye) and B and the host print that it went offline (its last will);
# then B, the host and the broker stop. Lines from the boards are relayed as "[A] ...".
# Exits 1, saying which step failed, when a step does not happen within its time.
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "lib"))
sys.path.insert(0, HERE)

from broker import Broker, BrokerError  # noqa: E402

from helix_ipc import EventBus, EventSubscription, EventTopic, MessageRouter, Request  # noqa: E402
from helix_ipc.mqtt import Bridge, client_for  # noqa: E402

STEP_S = 15


def micropython():
    exe = os.path.join(os.path.dirname(sys.executable), "micropython")
    return exe if os.path.exists(exe) else "micropython"


class Board:
    def __init__(self, home, node, role):
        self.node = node
        self.lines = []
        self.proc = subprocess.Popen(
            [micropython(), os.path.join(HERE, "board_node.py"), home, node, role],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.lines.append(line)
            print("[board %s] %s" % (self.node, line), flush=True)

    def saw(self, text):
        return any(text in line for line in self.lines)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(5)


def say(text):
    print("[host] " + text, flush=True)


async def until(what, check, timeout_s=STEP_S):
    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > timeout_s:
            raise SystemExit("demo-cluster: FAILED: %s did not happen within %d s" % (what, timeout_s))
        await asyncio.sleep(0.02)


async def host(broker, boards):
    bus, router = EventBus(), MessageRouter()
    bridge = Bridge("host", client_for("127.0.0.1", broker.port, "host", broker.password("host"), 10),
                    bus, router)
    bridge.error_hook = lambda where, error: say("mqtt %s: %s" % (where, error))
    offline = []
    bridge.status_hook = lambda node, online: (say("%s is %s" % (node, "online" if online else "offline")),
                                              None if online else offline.append(node))
    ticks = []

    def on_tick(event):
        ticks.append(event)
        if len(ticks) <= 3:
            say("tick %d from A (timestamp_ns %d)" % (event.tick_number, event.timestamp_ns))

    bus.subscribe(EventSubscription("print", [EventTopic.TICK], on_tick))
    bridge.listen("A", [EventTopic.TICK])
    bridge.proxy("B", "stats")
    bridge.start()
    task = asyncio.create_task(bridge.run())
    try:
        a, b = boards
        await until("both boards online", lambda: bridge.peers.get("A") and bridge.peers.get("B"))
        await until("3 ticks from A at the host", lambda: len(ticks) >= 3)
        await until("3 ticks from A at board B", lambda: b.saw("(3 received)"))
        say("asking B for its stats over MQTT: await router.request('B/stats', ...)")
        t0 = time.monotonic()
        answer = await router.request("B/stats", Request("host", "get"), timeout_ms=5000)
        say("B answered in %.1f ms: %r" % ((time.monotonic() - t0) * 1000, answer))
        if not answer.is_success:
            raise SystemExit("demo-cluster: FAILED: B's stats request answered %r" % (answer,))
        say("stopping board A (killed: it vanishes without a goodbye)")
        a.kill()
        await until("the host seeing A offline", lambda: "A" in offline)
        await until("board B seeing A offline", lambda: b.saw("A is offline"))
        s = bridge.stats()
        say("host bridge: received %d, events_in %d, requests_out %d, responses_in %d, malformed %d"
            % (s["received"], s["events_in"], s["requests_out"], s["responses_in"], s["malformed"]))
    finally:
        task.cancel()
        bridge.stop()


def main():
    home = tempfile.mkdtemp(prefix="helix-cluster-")
    broker = Broker(home, ["A", "B", "host"])
    try:
        port = broker.start()
    except BrokerError as e:
        print("demo-cluster: %s" % e, file=sys.stderr)
        return 1
    say("mosquitto on 127.0.0.1:%d (config and passwords in %s)" % (port, home))
    boards = []
    try:
        boards = [Board(home, "A", "ticker"), Board(home, "B", "stats")]
        asyncio.run(host(broker, boards))
    except SystemExit as e:
        print(e, file=sys.stderr)
        return 1
    finally:
        for b in boards:
            b.kill()
        broker.stop()
        shutil.rmtree(home, ignore_errors=True)
        say("boards and broker stopped")
    print("demo-cluster: OK", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
