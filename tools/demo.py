# tools/demo.py: `make demo` — a short run of what helix_ipc has, no hardware needed.
# Host-side script (CPython). Later grows into the firmware on a virtual board.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lib"))

from helix_ipc import channel, oneshot, ChannelFull, ChannelClosed  # noqa: E402


def main():
    tx, rx = channel(4)
    print("channel(4): sending 0..5")
    for i in range(6):
        try:
            tx.send(i)
            print("  sent", i)
        except ChannelFull as e:
            print("  refused", i, "->", e)
    tx.close()
    print("received:", rx.drain())
    try:
        rx.try_recv()
    except ChannelClosed as e:
        print("after close:", e)
    print("stats:", rx.stats())
    done_tx, done_rx = oneshot()
    done_tx.send("done")
    print("oneshot:", done_rx.try_recv())


if __name__ == "__main__":
    main()
