# tools/cluster/board_node.py: one virtual board of `make demo-cluster`, run by the
# MicroPython unix port (tools/cluster/demo.py starts it):
#
#   micropython tools/cluster/board_node.py HOME NODE ROLE
#
# HOME holds the broker's broker.json (port, passwords); ROLE is "ticker" (board A: a
# TickSource at 5 Hz exported as helix/A/event/tick) or "stats" (board B: prints the
# ticks it receives, serves a "stats" module, prints peers going offline). Each line it
# prints starts with the node's name; demo.py relays them. Runs until killed.
import sys

_here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
sys.path.insert(0, _here + "/../../lib")
sys.path.append(_here + "/../../.venv/mplib")

import json  # noqa: E402

from helix_ipc import EventBus, EventSubscription, EventTopic, MessageRouter, Response, TickSource  # noqa: E402
from helix_ipc._compat import ticks_diff, ticks_ms  # noqa: E402
from helix_ipc.mqtt import Bridge, client_for  # noqa: E402


def say(node, text):
    print("%s: %s" % (node, text))


def main():
    home, node, role = sys.argv[1], sys.argv[2], sys.argv[3]
    with open(home + "/broker.json") as f:
        state = json.load(f)
    bus, router = EventBus(), MessageRouter()
    bridge = Bridge(node, client_for("127.0.0.1", state["port"], node, state["users"][node], 10),
                    bus, router)
    bridge.error_hook = lambda where, error: say(node, "mqtt %s: %s" % (where, error))
    bridge.status_hook = lambda peer, online: say(node, "%s is %s" % (peer, "online" if online else "offline"))
    t0 = ticks_ms()
    seen = [0, None]  # ticks received, last tick number

    if role == "ticker":
        bridge.export(EventTopic.TICK)
    else:
        bridge.listen("A", [EventTopic.TICK])

        def on_tick(event):
            seen[0] += 1
            seen[1] = event.tick_number
            if seen[0] <= 3 or seen[0] % 10 == 0:
                say(node, "tick %d from A (%d received)" % (event.tick_number, seen[0]))

        bus.subscribe(EventSubscription("print", [EventTopic.TICK], on_tick))

        def stats(req):
            s = bridge.stats()
            text = "node=%s uptime_ms=%d ticks_received=%d last_tick=%s mqtt_received=%d malformed=%d" % (
                node, ticks_diff(ticks_ms(), t0), seen[0], seen[1], s["received"], s["malformed"])
            return Response.Success(text.encode())

        router.register(1, "stats", stats)

    import asyncio

    async def run():
        bridge.start()
        say(node, "connected to the broker on 127.0.0.1:%d (%s)" % (
            state["port"], sys.implementation.name))
        tasks = [asyncio.create_task(bridge.run())]
        if role == "ticker":
            src = TickSource(hz=5, bus=bus)
            src.start()
        else:
            tasks.append(asyncio.create_task(router.serve(1)))
        while True:
            await asyncio.sleep(1)

    asyncio.run(run())


main()
