# The link on a second USB CDC interface (profile "link_usb_cdc": True, rp2 with
# micropython-lib's usb-device-cdc): the profile key is checked; a virtual board with a
# stand-in usb.device package (host_tests/usbcdc_standin.py, backed by a pty: the real
# package was not run here) serves the link on that interface once the host opens it,
# next to the REPL line; without the package it says so in one line and serves the REPL
# line. The end-to-end tests are host processes: under MicroPython they skip.
import support
from support import raises

import helix_ipc.board as board

_TIMEOUT_S = 15
MISSING = ("helix_link: link_usb_cdc needs micropython-lib's usb-device-cdc: mpremote mip install usb-device-cdc"
           " (serving the other lines only)")


def _profile(**extra):
    p = dict(board.host_profile())
    p.update(extra)
    return p


def test_profile_key_checked():
    assert board.validate(_profile(link_usb_cdc=True))["link_usb_cdc"] is True
    assert board.validate(_profile(link_usb_cdc=False))["link_usb_cdc"] is False
    assert "link_usb_cdc" not in board.host_profile()  # optional: absent is off
    for bad in (1, "yes", None, 0):
        e = raises(TypeError, board.validate, _profile(link_usb_cdc=bad))
        assert str(e) == "profile field 'link_usb_cdc' must be True or False, got %r" % (bad,), str(e)
    raises(TypeError, board.set_profile, _profile(link_usb_cdc=1))
    assert board.profile()["name"] == "unix"  # refused: nothing changed


def test_rp2040_profile_leaves_it_off():
    from test_board import load_profile

    rp = load_profile("rp2040")
    assert rp["link_usb_cdc"] is False  # opt-in: it re-enumerates USB at boot (docs/link.md)
    assert board.validate(rp) is rp


def _board_files(extra_files):
    import os

    from tools.link.vboard import ROOT, board_files

    files = board_files(1)
    files["helix_link_cdc.py"] = open(os.path.join(ROOT, "firmware", "helix_link_cdc.py")).read()  # deployed with firmware/
    files["lib/helix_board.py"] = "PROFILE = %r\n" % (_profile(link_usb_cdc=True),)
    files.update(extra_files)
    return files


def _read_console(port, until, timeout_s=_TIMEOUT_S):
    # what the board wrote on its console (the REPL line) so far, up to `until`
    import os
    import select
    import time
    import tty

    fd = os.open(port, os.O_RDWR | os.O_NOCTTY)
    try:
        tty.setraw(fd)
        got = b""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end and until not in got:
            r, _, _ = select.select([fd], [], [], 0.1)
            if r:
                got += os.read(fd, 4096)
        time.sleep(0.3)  # and what follows it at once (a second such line would be here)
        while select.select([fd], [], [], 0)[0]:
            got += os.read(fd, 4096)
    finally:
        os.close(fd)
    return got.decode("utf-8", "replace")


def test_host_reaches_the_board_over_the_usb_cdc_line_next_to_the_repl_line():
    if support.MICROPYTHON:
        support.skip(_e2e())
    import os
    import time

    import usbcdc_standin
    from linkfixture import LinkedBoard, SecondLine

    from helix_ipc import EventTopic

    with SecondLine() as line:  # the USB host's end of the CDC interface: a port path of its own
        fp = line.fp
        with LinkedBoard(files=_board_files(usbcdc_standin.files(line.board_path))) as b:
            log = open(os.path.join(b.board.fs, "usb_standin.log")).read()
            assert log == "cdc init timeout=50 txbuf=1024 rxbuf=256\ndevice init 1 interface(s) builtin_driver=True\n", log
            # enumerated, but no program has the port open (no DTR): the board waits for it
            # without blocking its loop (the REPL line answers) and writes nothing onto it
            time.sleep(0.5)
            assert b.request("pico/probe", "echo", b"repl").data == b"repl"
            text = b.request("pico/link", "stats").data.decode()
            assert "usb_cdc" not in text and "repl: link unix: up to host" in text, text
            assert fp.passed["down"] == 0, fp.passed  # the board wrote nothing onto it, not even a HELLO
            open(os.path.join(b.board.fs, "cdc_dtr"), "w").close()  # the host opens the port
            hl2 = b.connect(line.port, extra=True, name="host2")
            assert hl2.peer.remote == "unix" and b.link.peer.remote == "unix"
            for i in range(5):
                r = b.request("pico/probe", "echo", b"cdc-%d" % i, 3000, link=hl2)
                assert r.data == b"cdc-%d" % i
            r = b.request("pico/stats", "get_stats", b"", 3000, link=hl2)
            assert r.is_success and bytes(r.data).startswith(b"ticks="), r
            r = b.request("pico/probe", "big", b"3000", 3000, link=hl2)
            assert r.data == b"x" * 3000  # a frame larger than the real txbuf (1024 B): see docs/link.md
            assert b.request("pico/probe", "echo", b"one").data == b"one"  # the REPL line still served
            assert len(b.events([EventTopic.TICK], 3, 3000, link=hl2)) == 3
            text = b.request("pico/link", "stats").data.decode()
            assert "repl: link unix: up to host" in text and "usb_cdc: link unix: up to host2" in text, text
            # the cable out: as micropython-lib's CDCInterface (its poll reports HUP only when
            # asked for it, and select.poll asks for what was registered) the stream does not
            # end: the line stays served, its link goes down (dead_ms) and up when the host is back
            open(os.path.join(b.board.fs, "cdc_unplug"), "w").close()
            _wait_stats(b, lambda t: "usb_cdc: link unix: down" in t, "the usb_cdc link down")
            assert b.request("pico/probe", "echo", b"repl alone").data == b"repl alone"
            os.remove(os.path.join(b.board.fs, "cdc_unplug"))  # back in: the host reconnects
            b.wait(lambda: hl2.link.state == "up" and hl2.link.ups == 2, "the usb_cdc link up again", 20)
            assert b.request("pico/probe", "echo", b"again", 3000, link=hl2).data == b"again"
            log = open(os.path.join(b.board.fs, "usb_standin.log")).read()
            assert log.endswith("unplugged\nplugged in again\n"), log


def test_missing_package_one_line_and_the_repl_line_served():
    if support.MICROPYTHON:
        support.skip(_e2e())
    from linkfixture import LinkedBoard

    with LinkedBoard(connect=False, files=_board_files({})) as b:
        out = _read_console(b.board.port, MISSING.encode())
        lines = [line for line in out.splitlines() if "usb-device-cdc" in line or "Traceback" in line]
        assert lines == [MISSING], out[-500:]
        b.connect()
        assert b.request("pico/probe", "echo", b"still here").data == b"still here"
        text = b.request("pico/link", "stats").data.decode()
        assert "repl: link unix: up to host" in text and "usb_cdc" not in text, text


def _wait_stats(b, cond, what, timeout_s=15):
    import time

    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        text = b.request("pico/link", "stats").data.decode()
        if cond(text):
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting for %s: %s" % (what, text))


def _e2e():
    from linkfixture import E2E

    return E2E
