# helix_ipc.link_status: the serial link's status text, loaded when first asked for (a
# board serving a link loads it at the first hx.status() or "link" module request, not
# at import: see docs/link.md, "What it costs"). Task context only.
#   status_line(link)   one line: state, frames, errors, drops, RTT
#   lines(links)        firmware/helix_link.py's status_lines(): [(line name, Link), ...]
#   handle(request, links)   the firmware's "link" module: "status", "stats"
from ._compat import ticks_diff, ticks_ms
from .messages import Response


def status_line(link):
    """One line: state, frames, errors, drops, RTT."""
    s = link.stats()
    s["name"] = link.name
    s["to"] = " to %s" % link.remote if link.remote else " (%s)" % link.error if link.error else ""
    return ("link %(name)s: %(state)s%(to)s | frames in %(frames_in)d out %(frames_out)d | errors crc"
            " %(crc_errors)d bad %(bad_frames)d oversize %(oversize)d malformed %(malformed)d | drops out"
            " %(out_dropped)d events %(events_dropped)d | requests out %(requests_out)d in %(requests_in)d"
            " timeouts %(timeouts)d late %(late_responses)d | rtt %(rtt_ms)s ms (min %(rtt_min)s max"
            " %(rtt_max)s) | noise %(noise)d B" % s)


def lines(links):
    """One line per served link; a link not ticked for 500 ms says so (main.py stopped?)."""
    out = []
    for line, ln in links:
        idle = ticks_diff(ticks_ms(), ln.ticked)
        out.append("%s: %s" % (line, status_line(ln)) if idle < 500 else
                   "%s: not served for %d ms (main.py stopped?); last: %s" % (line, idle, status_line(ln)))
    return out or ["link: not served"]


def handle(request, links):
    """"status": hx.status() as text; "stats": lines(links)."""
    t = request.request_type
    if t == "stats":
        return Response.Success("\n".join(lines(links)).encode())
    if t != "status":
        return Response.NOT_SUPPORTED
    import hx  # type: ignore[import-not-found]  # the firmware's: it prints the status, so its `print` is redirected for this one call

    out = []
    hx.print = lambda *a, **k: out.append(" ".join(map(str, a)))
    try:
        hx.status()
    finally:
        del hx.print
    return Response.Success("\n".join(out).encode())
