# The serial link end to end: the host (CPython, pyserial) and a virtual board running
# the firmware with helix_link (the MicroPython unix port behind its pty), directly and
# through tools/link/faultpty.py. Host processes only: under MicroPython each test skips.
import support
from linkfixture import E2E, Deframer, LinkedBoard

_TIMEOUT = 30


def _skip():
    if support.MICROPYTHON:
        support.skip(E2E)


def _cli(port, *args, timeout=_TIMEOUT):
    import subprocess
    import sys
    from linkfixture import _ROOT

    p = subprocess.run([sys.executable, "-m", "tools.link", "--port", port] + list(args), capture_output=True,
                       text=True, timeout=timeout, cwd=_ROOT)
    return p.returncode, p.stdout, p.stderr


def test_host_uses_the_boards_modules_and_events():
    _skip()
    from helix_ipc import Event, EventTopic, Request, Response

    with LinkedBoard() as b:
        assert b.link.peer.remote == "unix"  # the board's profile name
        for m in ("stats", "heartbeat", "link", "probe"):
            assert b.router.get_module_id("pico/" + m) is not None, m
        r = b.request("pico/stats", "get_stats")
        assert r.is_success and r.data.startswith(b"ticks=")
        assert b.request("pico/probe", "echo", b"\x00\xffbytes") == Response.Success(b"\x00\xffbytes")
        assert b.request("pico/probe", "nothing") is Response.NOT_SUPPORTED
        r = b.router.send("pico/stats", Request("t", "get_stats"))  # a synchronous send cannot wait
        assert isinstance(r, Response.Error) and "router.request()" in r.message
        big = b.request("pico/probe", "big", b"3000")
        assert big == Response.Success(b"x" * 3000)  # larger than the board's own max_frame: it sends, we take 4096
        evs = b.events([EventTopic.TICK], 5)
        assert all(isinstance(e, Event.Tick) for e in evs)
        nums = [e.tick_number for e in evs]
        assert nums == sorted(nums) and len(set(nums)) == 5
        r = b.request("pico/link", "stats")
        assert r.is_success and b"link unix: up to host" in r.data, r.data
        s = b.stats()
        assert s["frames_in"] > 5 and s["frames_out"] > 3 and s["crc_errors"] == 0 and s["events_in"] >= 5
        assert s["rtt_ms"] is None or s["rtt_ms"] >= 0


def test_cli_ask_watch_status():
    _skip()
    with LinkedBoard(connect=False) as b:
        rc, out, err = _cli(b.board.port, "ask", "probe", "echo", "hello there")
        assert (rc, out, err) == (0, "Success: hello there\n", ""), (rc, out, err)
        rc, out, err = _cli(b.board.port, "ask", "stats", "get_stats")
        assert rc == 0 and out.startswith("Success: ticks=") and len(out.splitlines()) == 1, (out, err)
        rc, out, err = _cli(b.board.port, "watch", "TICK", "--count", "4")
        lines = out.splitlines()
        assert rc == 0 and len(lines) == 4, (rc, out, err)
        assert all(line.startswith("Tick timestamp_ns=") and "tick_number=" in line for line in lines)
        rc, out, err = _cli(b.board.port, "status")
        assert rc == 0 and "helix_ipc on unix" in out and "modules (4)" in out and "router:" in out, (out, err)
        rc, out, err = _cli(b.board.port, "ask", "nope", "x")
        assert rc == 0 and out.startswith("Error: ") and "nope" in out  # a response, printed as it came


def test_cli_topic_names():
    _skip()
    from helix_ipc import EventTopic
    from tools.link.cli import topic

    for name in ("TICK", "SHUTDOWN", "MEMORY_PRESSURE", "CPU_HOTPLUG", "PROCESS", "INTERRUPT", "ALL"):
        assert topic(name) is getattr(EventTopic, name) and topic(name.lower()) is getattr(EventTopic, name)
    assert topic("Tick") is EventTopic.TICK
    for name in ("custom", "Custom", "name", "sensor/temp"):  # not a constant: a custom topic of that name
        assert topic(name) == EventTopic.Custom(name), topic(name)


def test_cli_errors_name_the_cause():
    _skip()
    import os

    rc, out, err = _cli("/nonexistent/ttyX", "status")
    assert rc == 2 and err == "link: port /nonexistent/ttyX: no such port\n", (rc, err)
    # nobody behind the port: no answer
    m, s = os.openpty()
    try:
        rc, out, err = _cli(os.ttyname(s), "--timeout-ms", "500", "status")
        assert rc == 3 and "no board answered" in err and len(err.splitlines()) == 1, (rc, err)
    finally:
        os.close(m)
        os.close(s)
    # a board that speaks another version
    rc, err = _mismatch()
    assert rc == 4 and "version mismatch" in err and "speaks link version 99" in err, (rc, err)
    with LinkedBoard() as b:
        # busy: this test's HostLink holds the port
        rc, out, err = _cli(b.board.port, "status")
        assert rc == 2 and "busy" in err, (rc, err)
        b.disconnect()
        # a deadline: the module blocks the board for longer than we wait
        rc, out, err = _cli(b.board.port, "--timeout-ms", "1500", "ask", "probe", "sleep", "2500")
        assert rc == 5 and "no answer from unix/probe within 1500 ms" in err, (rc, out, err)


def _mismatch():
    # a fake board on a pty: answers every HELLO with link version 99
    import os
    import threading

    from helix_ipc import wire

    m, s = os.openpty()
    import tty

    tty.setraw(m)
    tty.setraw(s)
    stop = []

    def fake():
        import select

        d = Deframer(4096)
        while not stop:
            r, _, _ = select.select([m], [], [], 0.05)
            if r:
                for p in d.feed(os.read(m, 4096)):
                    if wire.decode(p)[0] == 0:
                        os.write(m, wire.frame(wire.encode([0, 99, "future", 1, 512, 1, []])))

    t = threading.Thread(target=fake, daemon=True)
    t.start()
    try:
        rc, out, err = _cli(os.ttyname(s), "--timeout-ms", "2000", "status")
    finally:
        stop.append(1)
        t.join(2)
        os.close(m)
        os.close(s)
    return rc, err


def test_text_outside_the_basic_plane_crosses_to_the_board_and_back():
    # the host (CPython) writes "\U0001F600" as raw UTF-8, not as a \ud83d\ude00 pair that
    # MicroPython's json would keep as two surrogate halves: the board looks the name up as
    # sent and names it, unchanged, in its answer
    _skip()
    from helix_ipc import Request

    with LinkedBoard() as b:
        r = b.call(b.link.request("probe\U0001F600", Request("t", "echo\U0001F600", b"x"), 3000))
        assert not r.is_success and r.message.startswith("probe\U0001F600: "), r


def test_repl_output_between_frames():
    _skip()
    with LinkedBoard() as b:
        assert b.request("pico/probe", "print", b"200").is_success
        for i in range(20):
            assert b.request("pico/probe", "echo", b"%d" % i).data == b"%d" % i
        s = b.stats()
        assert s["noise"] > 200 * 30, s  # the probe's lines (and the status lines) were skipped
        # each probe line holds a "~" (a frame start) and ends as a frame whose last 4 bytes are
        # not its CRC ("~not a frame"): counted as a CRC error; no answer was lost
        assert s["crc_errors"] == 200 and s["bad_frames"] == 0 and s["ups"] == 1, s


def test_corrupted_lost_and_delayed_bytes_are_dropped_and_recovered():
    _skip()
    from helix_ipc import Timeout
    from tools.link.faultpty import FaultPty

    with LinkedBoard(connect=False) as b:
        fp = FaultPty(b.board.port, seed=4).start()
        try:
            b.connect(fp.port)
            fp.corrupt["up"] = fp.corrupt["down"] = 0.001
            fp.drop["up"] = fp.drop["down"] = 0.001
            fp.delay_ms = 15
            ok = timeouts = 0
            for i in range(30):
                payload = b"payload-%d-" % i + b"z" * 60
                try:
                    r = b.request("pico/probe", "echo", payload, timeout_ms=500)
                except Timeout:
                    timeouts += 1
                    continue
                if r.is_success:
                    assert r.data == payload  # never a corrupted answer
                    ok += 1
                else:  # the link went down and came back meanwhile: the request failed clearly
                    assert "lost" in r.message or "restarted" in r.message, r
            s = b.stats()
            lost = s["crc_errors"] + s["bad_frames"]
            assert fp.corrupted["down"] + fp.dropped["down"] > 0 and lost > 0, (s, fp.corrupted, fp.dropped)
            assert ok >= 10, (ok, timeouts, s)
            # faults off: the link is (again) up and every request gets through
            fp.corrupt["up"] = fp.corrupt["down"] = fp.drop["up"] = fp.drop["down"] = 0
            fp.delay_ms = 0
            b.wait(lambda: b.link.link.state == "up", "the link up again")
            for i in range(10):
                assert b.request("pico/probe", "echo", b"%d" % i, timeout_ms=3000).data == b"%d" % i
            r = b.request("pico/link", "stats")
            assert b"crc" in r.data
        finally:
            b.disconnect()
            fp.stop()


def test_board_reset_mid_request_fails_it_and_reconnects():
    _skip()
    import time

    from helix_ipc import Response

    with LinkedBoard() as b:
        t0 = time.monotonic()
        r = b.request("pico/probe", "reset", timeout_ms=15000)
        assert isinstance(r, Response.Error) and "restarted" in r.message, r
        assert time.monotonic() - t0 < 10  # failed when the board came back, not at the deadline
        assert b.link.link.ups == 2
        assert b.request("pico/probe", "echo", b"after").data == b"after"
        assert b.stats()["link_failures"] >= 1


def test_host_disconnect_stops_the_board_streaming_then_reconnects():
    _skip()
    import os
    import select
    import time
    import tty

    from helix_ipc import EventTopic

    with LinkedBoard() as b:
        assert len(b.events([EventTopic.TICK], 3)) == 3  # the board streams ticks to us
        hl = b.link

        async def vanish():  # the host dies: no BYE, the port just closes
            hl._stopping = True
            hl._task.cancel()
            hl._close_port()

        b.call(vanish())
        b.link = None
        time.sleep(4.5)  # > the board's dead_ms (3500)
        fd = os.open(b.board.port, os.O_RDWR | os.O_NOCTTY)
        try:
            tty.setraw(fd)
            d = Deframer(4096)
            start = time.monotonic()
            got = b""
            while time.monotonic() < start + 3:
                r, _, _ = select.select([fd], [], [], 0.1)
                if r:
                    chunk = os.read(fd, 4096)
                    if time.monotonic() > start + 0.5:  # what the pty held from before is stale
                        got += chunk
                        d.feed(chunk)
        finally:
            os.close(fd)
        assert d.frames == 0, got[-300:]  # no ticks, nothing but the console's own lines
        assert b"helix: up" in got  # the status lines: the console is the console again
        b.connect()
        assert b.link.link.state == "up"
        assert len(b.events([EventTopic.TICK], 3)) == 3


def test_fuzz_random_frames_never_crash_or_run_anything():
    _skip()
    import os
    import random
    import time

    from helix_ipc import wire

    rng = random.Random(13)
    code = ["__import__('os').remove('main.py')", "open('pwned','w').write('x')", "import machine;machine.reset()",
            "exec", "eval", "print('PWNED')", "\x03", "\r\nprint(1)\r\n"]

    tokens = ["[", "]", ",", "1", "-7", "0", "3", '"', '"probe"', '"reset"', '"exec"', '"AA=="', "true", "null",
              "1.5", "{", "}", ":", " ", "\\", "\\u007e", "[1,", "[2,", "[3,", "[0,", '"\\u0003"']

    no_ctrl_c = [b for b in range(256) if b != 3]

    def value(depth=0):
        k = rng.randrange(9 if depth < 3 else 6)
        if k == 0:
            return rng.randrange(-2 ** 40, 2 ** 40)
        if k == 1:
            return rng.choice(code)
        if k == 2:  # base64 text, as in the fields that hold bytes
            return wire.b64(bytes(rng.randrange(256) for _ in range(rng.randrange(20))))
        if k == 3:
            return rng.choice([None, True, False])
        if k == 4:
            return rng.randrange(8)
        if k == 5:
            return rng.choice(["stats", "probe", "link", "get_stats", "reset", "sleep"])
        if k == 6:
            return [value(depth + 1) for _ in range(rng.randrange(6))]
        if k == 7:
            return {rng.choice(code): value(depth + 1)}
        return [rng.randrange(8)] + [value(depth + 1) for _ in range(rng.randrange(5))]

    with LinkedBoard() as b:
        hl = b.link
        before = b.call(_board_stats(b))
        sent = 0
        frames = []
        for _ in range(1500):
            k = rng.randrange(4)
            if k == 0 and rng.randrange(2):  # random bytes with a good CRC (no Ctrl-C: the REPL's key)
                p = bytes(rng.choice(no_ctrl_c) for _ in range(rng.randrange(60)))
            elif k == 0:  # random JSON-ish text with a good CRC
                p = "".join(rng.choice(tokens) for _ in range(rng.randrange(1, 12))).encode()
            elif k == 1:  # well-formed values, random messages
                p = wire.encode(value())
            elif k == 2:  # message-shaped: a kind the link knows, random fields
                m = [rng.choice([0, 1, 2, 3, 4, 5, 6, 7])] + [value(1) for _ in range(rng.randrange(7))]
                if m[0] == 1 and rng.randrange(2):  # a REQ that must never reach "reset"/"sleep"
                    m = [1, rng.randrange(2 ** 20), rng.choice(code), [rng.choice(code), "", 1]]
                p = wire.encode(m)
            else:  # not even a frame: line noise (no Ctrl-C: that is the REPL's key)
                frames.append(bytes(rng.choice(no_ctrl_c) for _ in range(rng.randrange(40))))
                continue
            f = wire.frame(p)
            if rng.randrange(5) == 0:
                f = f[:rng.randrange(len(f))]  # truncated
            frames.append(f)
            sent += 1

        async def blast():
            for f in frames:
                hl.ser.write(f)
            hl.ser.flush()

        b.call(blast())
        time.sleep(1.0)
        # alive, the same run (no reset), still linked, and it counted what it dropped
        assert b.request("pico/probe", "echo", b"alive", timeout_ms=5000).data == b"alive"
        after = b.call(_board_stats(b))
        assert after["malformed"] + after["bad_frames"] + after["crc_errors"] > before["malformed"] + 100, after
        assert hl.link.ups == 1
        assert not os.path.exists(os.path.join(b.board.fs, "pwned"))
        assert os.path.exists(os.path.join(b.board.fs, "main.py"))
        status = b.request("pico/link", "status").data.decode()
        assert "(run 1)" in status, status  # never reset, never restarted


async def _board_stats(b):
    # the board's link counters, from its "link" module's stats line
    import re

    from helix_ipc import Request

    r = await b.router.request("pico/link", Request("t", "stats"), 5000)
    text = bytes(r.data).decode()
    out = {}
    for key, pat in (("malformed", r"malformed (\d+)"), ("bad_frames", r"bad (\d+)"), ("crc_errors", r"crc (\d+)")):
        out[key] = int(re.search(pat, text).group(1))
    return out


def test_a_second_line_is_served_next_to_the_repl_line():
    # the board serves a second line (here a pty the board opens, as it would a
    # machine.UART from its profile) through the same serve_line, at the same time
    _skip()
    from helix_ipc import EventTopic
    from linkfixture import SecondLine
    from tools.link.vboard import board_files

    with SecondLine() as line:
        extra = ("line2 = open(%r, 'r+b')\nhelix_app.system.services.append("
                 "lambda s: helix_link.serve_line(s, line2, line2, 'unix-line2', 'line2'))" % line.board_path)
        with LinkedBoard(files=board_files(1, extra)) as b:
            hl2 = b.connect(line.port, extra=True, name="host2")
            assert hl2.peer.remote == "unix-line2" and b.link.peer.remote == "unix"
            assert b.request("pico/probe", "echo", b"two", 3000, link=hl2).data == b"two"
            assert b.request("pico/probe", "echo", b"one").data == b"one"
            assert len(b.events([EventTopic.TICK], 3, 3000, link=hl2)) == 3
            text = b.request("pico/link", "stats").data.decode()
            assert "repl: link unix: up to host" in text and "line2: link unix-line2: up to host2" in text, text


def test_a_profile_link_uart_is_served_through_helix_link_uart():
    # a profile naming a link_uart: helix_link.serve imports helix_link_uart, which opens
    # machine.UART(id, baudrate, tx=Pin(tx), rx=Pin(rx)) and serves it next to the REPL
    # line. The host's machine has no UART: a stand-in checks the arguments it is given
    # and opens a pty instead (what it does not prove: a real UART's buffers and timing)
    _skip()
    import os

    from linkfixture import SecondLine
    from tools.link.vboard import board_files

    with SecondLine() as line:
        extra = ("import machine, helix_ipc.board as hb\n"
                 "def _uart(id, baudrate, tx=None, rx=None):\n"
                 "    if (id, baudrate, type(tx), type(rx)) != (1, 9600, machine.Pin, machine.Pin):\n"
                 "        raise ValueError('UART(%%r, %%r, tx=%%r, rx=%%r)' %% (id, baudrate, tx, rx))\n"
                 "    return open(%r, 'r+b')\n"
                 "machine.UART = _uart\n"
                 "p = dict(hb.profile())\n"
                 "p['link_uart'] = {'id': 1, 'baudrate': 9600, 'tx': 4, 'rx': 5}\n"
                 "hb.set_profile(p)" % line.board_path)
        files = board_files(1, extra)
        files["helix_link_uart.py"] = open(os.path.join(os.path.dirname(__file__), "..", "firmware",
                                                        "helix_link_uart.py")).read()
        with LinkedBoard(files=files) as b:
            hl2 = b.connect(line.port, extra=True, name="host2")
            assert hl2.peer.remote == "unix"
            assert b.request("pico/probe", "echo", b"uart", 3000, link=hl2).data == b"uart"
            assert b.request("pico/probe", "echo", b"repl").data == b"repl"  # the REPL line still served
            text = b.request("pico/link", "stats").data.decode()
            assert "uart: link unix: up to host2" in text and "repl: link unix: up to host" in text, text


def test_ctrl_c_still_stops_main_and_the_repl_is_usable_after_the_host_left():
    # frames never hold 0x03: Ctrl-C stops main.py as ever, the REPL answers, and the
    # link's status says it is no longer served
    _skip()
    import os
    import select
    import subprocess
    import sys
    import time
    import tty

    with LinkedBoard() as b:
        assert b.request("pico/stats", "get_stats").is_success
        b.disconnect()
        time.sleep(0.5)  # the BYE is read while main.py still runs
        fd = os.open(b.board.port, os.O_RDWR | os.O_NOCTTY)
        try:
            tty.setraw(fd)
            os.write(fd, b"\x03")
            got = b""
            end = time.monotonic() + 10
            while time.monotonic() < end and not got.endswith(b">>> "):
                r, _, _ = select.select([fd], [], [], 0.2)
                if r:
                    got += os.read(fd, 4096)
        finally:
            os.close(fd)
        assert b"helix: Ctrl-C, stopping" in got and got.endswith(b">>> "), got[-300:]
        time.sleep(0.5)
        mpremote = os.path.join(os.path.dirname(sys.executable), "mpremote")
        p = subprocess.run([mpremote, "connect", b.board.port, "resume", "exec",
                            "import helix_link, hx; print(helix_link.status_lines()); hx.ask('stats', 'get_stats')"],
                           capture_output=True, text=True, timeout=_TIMEOUT)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "not served for" in p.stdout and "host left" in p.stdout, p.stdout
        assert "stats get_stats -> ticks=" in p.stdout, p.stdout
