# tools/link/demo.py: the serial link in a minute, no hardware (CPython).
#
#   python tools/link/demo.py          (or, from tools/demo.py: `from tools.link import demo; demo.main()`)
#
# Starts a virtual board running the firmware with helix_link served on its REPL line,
# connects the host over the board's pty, asks the board's modules through the host
# router ("pico/stats", ...), watches its ticks through the host bus, shows both sides'
# link counters and the CLI, then stops everything. Returns 0 when every step worked.
import asyncio
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
if os.path.join(ROOT, "lib") not in sys.path:
    sys.path.insert(0, os.path.join(ROOT, "lib"))


def say(text):
    print("\n### " + text, flush=True)


async def _host(port):
    from helix_ipc import EventTopic, Request, link_status
    from tools.link.cli import event_line, response_line
    from tools.link.host import HostLink

    async with HostLink(port, prefix="pico/") as hl:
        print("link up: host <-> %r, the board's modules: %s" % (hl.peer.remote, ", ".join(hl.link.remote_modules)))
        print("in the host router:", ", ".join(n for n in ("pico/" + m for m in hl.link.remote_modules)
                                              if hl.router.get_module_id(n) is not None))
        say("asking the board's modules through the host router")
        for to, what in (("pico/stats", "get_stats"), ("pico/heartbeat", "get_blinks")):
            t0 = time.perf_counter()
            r = await hl.router.request(to, Request("host", what), timeout_ms=3000)
            print("  await router.request(%r, %r) -> %s  (%.1f ms)" % (to, what, response_line(r),
                                                                      (time.perf_counter() - t0) * 1000))
        say("watching the board's ticks on the host bus (5 events)")
        with hl.stream([EventTopic.TICK]) as ticks:
            for _ in range(5):
                print("  " + event_line(await ticks.next(timeout_ms=3000)))
        say("link counters")
        s = hl.stats()
        print("  host : " + link_status.status_line(hl.link))
        r = await hl.request("link", Request("host", "stats"), 3000)
        print("  board: " + bytes(r.data).decode())
        return s["crc_errors"] == 0


def main():
    from tools.link.vboard import Board

    say("starting a virtual board: the firmware with helix_link.serve in system.services")
    board = Board(report_s=3600)
    ok = False
    try:
        print("port:", board.port)
        time.sleep(0.3)
        ok = asyncio.run(_host(board.port))
        say("the same from the command line")
        for args in (["ask", "stats", "get_stats"], ["watch", "TICK", "--count", "2"]):
            cmd = [sys.executable, "-m", "tools.link", "--port", board.port] + args
            print("$ python -m tools.link --port PORT " + " ".join(args))
            p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=30)
            for line in (p.stdout + p.stderr).splitlines():
                print("  " + line)
            ok = ok and p.returncode == 0
    finally:
        board.close()
        say("virtual board stopped")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
