# tools/link/cli.py: `python -m tools.link --port PORT ask|watch|status ...` (CPython).
#
#   ask MODULE REQUEST_TYPE [PAYLOAD]   the board module's response on one line; exit 0
#   watch TOPIC... [--count N]          each event as it arrives, one line with its fields;
#                                       exits after N (else runs until Ctrl-C)
#   status                              the board's hx.status()
# TOPIC: TICK, SHUTDOWN, MEMORY_PRESSURE, CPU_HOTPLUG, PROCESS, INTERRUPT, ALL (any case),
# anything else a custom topic name. PAYLOAD: text, sent as UTF-8 bytes.
# Failures print one line on stderr and exit non-zero: 2 the port is missing or busy,
# 3 no board answered, 4 link version mismatch, 5 deadline passed, 6 link lost, 1 usage.
import argparse
import asyncio
import sys

from tools.link.host import E_DEADLINE, E_LOST, HostLink, LinkError

_SLICE_MS = 250


def topic(name):
    """EventTopic.<NAME> for a constant's name in any case, else EventTopic.Custom(name)."""
    from helix_ipc import EventTopic

    t = getattr(EventTopic, name.upper(), None)
    return t if isinstance(t, EventTopic) else EventTopic.Custom(name)


def response_line(r):
    """One line for a Response: `Success: text` (or bytes repr), `Rejected: ...`, ..."""
    from helix_ipc import Response

    if isinstance(r, Response.Success):
        try:
            text = bytes(r.data).decode()
            if text.isprintable():
                return "Success: " + text
        except UnicodeError:
            pass
        return "Success: %r" % bytes(r.data)
    if isinstance(r, Response.Rejected):
        return "Rejected: " + r.reason
    if isinstance(r, Response.Error):
        return "Error: " + r.message
    return "NOT_SUPPORTED"


def event_line(ev):
    """`Tick timestamp_ns=... tick_number=...` (Custom data as a bytes repr)."""
    out = [type(ev).__name__]
    for f in ev._fields:
        out.append("%s=%r" % (f, getattr(ev, f)) if f == "data" else "%s=%s" % (f, getattr(ev, f)))
    return " ".join(out)


async def _ask(hl, args):
    from helix_ipc import Request, Timeout
    from helix_ipc.remote_out import LinkDown

    req = Request(hl.link.name, args.request_type, (args.payload or "").encode())
    try:
        r = await hl.request(args.module, req, args.timeout_ms)
    except Timeout:
        raise LinkError("no answer from %s/%s within %d ms" % (hl.peer.remote, args.module, args.timeout_ms),
                        E_DEADLINE)
    except LinkDown as e:
        raise LinkError(str(e), E_LOST)
    return r


async def _run(args, out):
    from helix_ipc import Response, Timeout

    hl = HostLink(args.port, args.name, baudrate=args.baudrate)
    await hl.open(args.timeout_ms)
    try:
        if args.command == "ask":
            out(response_line(await _ask(hl, args)))
        elif args.command == "status":
            args.module, args.request_type, args.payload = "link", "status", ""
            r = await _ask(hl, args)
            if not isinstance(r, Response.Success):
                raise LinkError("the board's link module did not give its status: %s" % response_line(r), 1)
            out(bytes(r.data).decode())
        else:
            topics = [topic(t) for t in args.topics]
            with hl.stream(topics, 256) as s:
                n = waited = down = 0
                while args.count is None or n < args.count:
                    try:
                        ev = await s.next(timeout_ms=_SLICE_MS)
                    except Timeout:
                        waited += _SLICE_MS
                        down = down + _SLICE_MS if hl.link.state != "up" else 0
                        if down >= args.timeout_ms:  # a reset comes back up by itself; this did not
                            raise LinkError("link lost: %s" % hl.link.error, E_LOST)
                        if args.event_timeout_ms is not None and waited >= args.event_timeout_ms:
                            raise LinkError("no event on %s within %d ms" % (
                                " ".join(args.topics), args.event_timeout_ms), E_DEADLINE)
                        continue
                    waited = 0
                    out(event_line(ev))
                    n += 1
    finally:
        await hl.close()


def parser():
    ap = argparse.ArgumentParser(prog="python -m tools.link", description="Use a helix_ipc board over its serial link.")
    ap.add_argument("--port", required=True, help="the board's serial port (e.g. /dev/ttyACM0, build/vboard/unix/tty)")
    ap.add_argument("--baudrate", type=int, default=115200)
    ap.add_argument("--name", default="host", help="this node's name in the handshake (default host)")
    ap.add_argument("--timeout-ms", type=int, default=5000, help="handshake and request deadline (default 5000)")
    sub = ap.add_subparsers(dest="command", required=True)
    a = sub.add_parser("ask", help="send a request to a board module, print the response")
    a.add_argument("module")
    a.add_argument("request_type")
    a.add_argument("payload", nargs="?")
    w = sub.add_parser("watch", help="print the board's events on these topics")
    w.add_argument("topics", nargs="+", metavar="TOPIC")
    w.add_argument("--count", type=int, help="exit after N events")
    w.add_argument("--event-timeout-ms", type=int, default=None, help="fail when no event comes for this long")
    sub.add_parser("status", help="print the board's hx.status()")
    return ap


def main(argv=None, out=None):
    args = parser().parse_args(argv)
    out = out or (lambda line: print(line, flush=True))
    try:
        asyncio.run(_run(args, out))
    except LinkError as e:
        sys.stderr.write("link: %s\n" % e)
        return e.code
    except KeyboardInterrupt:
        return 130
    return 0
