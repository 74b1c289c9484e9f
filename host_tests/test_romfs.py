# test_romfs: the ROMFS deploy (tools/deploy/romfs.py, docs/romfs.md). The image is built
# from the real tree by the deploy tool itself (`tools/deploy build --board unix --arch
# x64 --romfs`, through os.system on the unix port, which has no subprocess) and mounted
# with vfs.VfsRom at /rom, as a board with a ROMFS partition mounts it:
# - the firmware's modules and the library import from /rom, and the system runs from
#   there: ticks delivered to the bus, a request answered by a module, and a request
#   over helix_ipc.link (two Links on byte buffers) answered by the board's system;
# - importing the board's code from the image takes less heap than importing the very
#   same .mpy files from the filesystem (two fresh unix-port processes in this run);
# - end to end (CPython drives it): a virtual board whose boot.py mounts the image
#   answers a link request over its pty with the board's code from /rom;
# - `tools/deploy --romfs` to a board without ROMFS (the virtual board) stops with one
#   line before anything is copied.
# The vfs tests need MicroPython's vfs.VfsRom: under CPython they skip saying so.
import os
import sys

import support

_HERE = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
if not _HERE.startswith("/"):
    _HERE = os.getcwd() + "/" + _HERE
ROOT = _HERE.rsplit("/", 1)[0]
_NO_VFSROM = "needs MicroPython's vfs.VfsRom to mount a ROMFS image (CPython has no MicroPython VFS)"
_E2E = "end-to-end: drives host processes (the virtual board, mpremote) through CPython's subprocess"


def _need_vfsrom():
    if not support.MICROPYTHON:
        support.skip(_NO_VFSROM)
    import vfs

    if not hasattr(vfs, "VfsRom"):
        support.skip("this MicroPython build has no vfs.VfsRom (MICROPY_VFS_ROM)")
    return vfs


def _exe(name):
    for cand in (ROOT + "/.venv/bin/" + name, (sys.executable or "").rsplit("/", 1)[0] + "/" + name):
        try:
            os.stat(cand)
            return cand
        except OSError:
            pass
    return name


def _tmpdir():
    d = "/tmp/helix-romfs-" + "".join("%02x" % b for b in os.urandom(6))
    os.mkdir(d)
    return d


def _rmtree(d):
    if d.startswith("/tmp/helix-romfs-"):
        os.system("rm -rf " + d)


def _build(d):
    """The ROMFS image and the files of a unix-port deploy, built by the deploy tool into
    d (helix.romfs; rom/: the same .mpy files as files; root/, lib/: what stays files)."""
    cmd = "cd %s && %s -m tools.deploy build --board unix --arch x64 --romfs --build-dir %s/build >%s/build.log 2>&1" % (
        ROOT, _exe("python"), d, d)
    if os.system(cmd) != 0:
        with open(d + "/build.log") as f:
            raise AssertionError("tools/deploy build --romfs failed: " + f.read())
    return d + "/build"


def _mount(vfs, image):
    with open(image, "rb") as f:
        data = f.read()
    vfs.mount(vfs.VfsRom(data), "/rom")
    sys.path[:0] = ["/rom", "/rom/lib"]


def test_image_holds_the_modules_and_the_files_stay_files():
    _need_vfsrom()
    d = _tmpdir()
    try:
        b = _build(d)
        with open(b + "/helix.romfs", "rb") as f:
            assert f.read(3) == b"\xd2\xcd\x31"  # a ROMFS image (mpremote's writer)
        import vfs

        rom = vfs.VfsRom(open(b + "/helix.romfs", "rb").read())
        vfs.mount(rom, "/rom")
        try:
            top = sorted(os.listdir("/rom"))
            lib = sorted(os.listdir("/rom/lib/helix_ipc"))
        finally:
            vfs.umount("/rom")
        src = sorted(n[:-3] + ".mpy" for n in os.listdir(ROOT + "/lib/helix_ipc") if n.endswith(".py"))
        assert lib == src, (lib, src)
        fw = sorted(n[:-3] + ".mpy" for n in os.listdir(ROOT + "/firmware")
                    if n.endswith(".py") and n not in ("main.py", "boot.py", "manifest.py"))
        assert [n for n in top if n != "lib"] == fw, (top, fw)
        assert "helix_app.mpy" in top and "helix_link.mpy" in top
        # main.py, boot.py and the profile stay files on the board's filesystem
        assert sorted(os.listdir(b + "/root")) == ["boot.py", "main.py"]
        assert os.listdir(b + "/lib") == ["helix_board.py"]
    finally:
        _rmtree(d)


def _wait(cond, what, s=None):
    import time

    for _ in range(3000):
        if s is not None:
            s.service()
        if cond():
            return
        time.sleep(0.001)
    raise AssertionError("timed out waiting for " + what)


def test_firmware_runs_from_the_image():
    vfs = _need_vfsrom()
    support.need_threads()
    d = _tmpdir()
    try:
        _mount(vfs, _build(d) + "/helix.romfs")
        import helix_app
        import helix_link
        from helix_ipc import EventBus, MessageRouter, ModuleAddress, ModuleHost, Request, Response
        from helix_ipc import link as hlink

        loaded = sorted(n for n in sys.modules if n.startswith("helix"))
        files = dict((n, getattr(sys.modules[n], "__file__", "")) for n in loaded)
        assert "helix_ipc.link" in files and "helix_examples" in files, files
        for n, f in files.items():
            assert f.startswith("/rom/") and f.endswith(".mpy"), (n, f)
        assert files["helix_app"] == "/rom/helix_app.mpy"
        assert files["helix_ipc.bus"] == "/rom/lib/helix_ipc/bus.mpy"

        s = helix_app.System()  # on a private bus and router, as test_firmware
        s.bus = EventBus()
        s.router = MessageRouter()
        s.host = ModuleHost(s.bus, s.router)
        s.start(hz=200)
        try:
            _wait(lambda: s.ticks.stats().delivered >= 20, "20 ticks delivered", s)
            r = s.router.send("stats", Request(ModuleAddress.Name("t"), "get_stats"))
            assert isinstance(r, Response.Success), r
            fields = dict(kv.split("=") for kv in r.data.decode().split(","))
            assert int(fields["ticks"]) >= 20, fields

            # the serial link, both ends from the image, on two byte buffers
            to_board, to_host = bytearray(), bytearray()
            board = helix_link.Link(s.router, s.bus, to_host.extend, "pico", False, modules=s.host.loaded)
            host = hlink.Link(MessageRouter(), EventBus(), to_board.extend, "host", True, "pico/")

            def step():
                host.tick()
                board.tick()
                if to_board:
                    data = bytes(to_board)
                    to_board[:] = b""
                    board.feed(data)
                if to_host:
                    data = bytes(to_host)
                    to_host[:] = b""
                    host.feed(data)
                s.service()

            _wait(lambda: host.state == "up" and board.state == "up", "the link up", _Stepper(step))
            assert "stats" in host.remote_modules, host.remote_modules
            got = []
            host.peer.queue("stats", Request("h", "get_stats"), got.append)
            _wait(lambda: got, "the answer over the link", _Stepper(step))
            assert got[0].is_success and b"ticks=" in got[0].data, got
        finally:
            s.stop()
    finally:
        _rmtree(d)


class _Stepper:
    """_wait's `s`: service() runs one step of the link."""

    def __init__(self, fn):
        self.service = fn


_HEAP = """
import gc, sys
sys.path.insert(0, %(tests)r)
import boardmode
if "--board" in sys.argv:
    boardmode.enter()
if sys.argv[1] == "rom":
    import vfs
    vfs.mount(vfs.VfsRom(open(%(build)r + "/helix.romfs", "rb").read()), "/rom")
    sys.path[:0] = ["/rom", "/rom/lib"]
else:  # the same .mpy files, from the filesystem
    sys.path[:0] = [%(build)r + "/rom", %(build)r + "/rom/lib"]
gc.collect()
a = gc.mem_alloc()
import helix_ipc.wire, helix_ipc.remote, helix_ipc.link, helix_app, helix_link
gc.collect()
b = gc.mem_alloc()
print("HEAP", b - a)
print("FROM", ",".join(sorted(n + "=" + getattr(m, "__file__", "") for n, m in sys.modules.items()
                              if n.startswith("helix"))))
"""


def _child_heap(d, b, where):
    script = d + "/heap.py"
    with open(script, "w") as f:
        f.write(_HEAP % {"tests": ROOT + "/host_tests", "build": b})
    out = d + "/heap-%s.out" % where
    board = " --board" if support.BOARD_MODE else ""
    rc = os.system("%s %s %s%s >%s 2>&1" % (_exe("micropython"), script, where, board, out))
    with open(out) as f:
        text = f.read()
    assert rc == 0, text
    got = dict(ln.split(" ", 1) for ln in text.splitlines() if " " in ln)
    return int(got["HEAP"]), got["FROM"]


def test_importing_from_the_image_takes_less_heap_than_from_files():
    _need_vfsrom()
    d = _tmpdir()
    try:
        b = _build(d)
        files_heap, files_from = _child_heap(d, b, "files")
        rom_heap, rom_from = _child_heap(d, b, "rom")
        # the same modules, the same .mpy files: only where they are read from differs
        assert files_from.replace(b + "/rom", "/rom") == rom_from, (files_from, rom_from)
        assert "helix_link=/rom/helix_link.mpy" in rom_from and "helix_ipc.wire=/rom/lib/" in rom_from, rom_from
        print("romfs: board side of the link: %d B from files, %d B from the image" % (files_heap, rom_heap))
        assert 0 < rom_heap < files_heap, (rom_heap, files_heap)
    finally:
        _rmtree(d)


# -- end to end: the virtual board (CPython drives it) ---------------------------------
# boot.py of a virtual board running from an image: the unix port has no ROMFS partition,
# so the image travels as base64 text on the board's filesystem and is mounted at /rom
# from a bytes object, with /rom and /rom/lib first on sys.path (as a board's firmware
# mounts its partition).
_BOOT_IMAGE = """\
import sys, vfs, binascii
with open("/romfs.b64") as _f:
    _img = binascii.a2b_base64(_f.read())
vfs.mount(vfs.VfsRom(_img), "/rom")
sys.path[:0] = ["/rom", "/rom/lib"]
del _f
"""
_WHERE = ("import sys\n_f = open('/where.txt', 'w')\n"
          "_f.write(','.join(sorted(n + '=' + getattr(m, '__file__', '') for n, m in sys.modules.items() "
          "if n.startswith('helix'))))\n_f.close()")


def test_virtual_board_serves_the_link_with_its_code_from_the_image():
    if support.MICROPYTHON:
        support.skip(_E2E)
    import base64

    from helix_ipc import EventTopic
    from linkfixture import LinkedBoard

    from tools.link.vboard import MAIN, PROBE

    d = _tmpdir()
    try:
        with open(_build(d) + "/helix.romfs", "rb") as f:
            img = f.read()
    finally:
        _rmtree(d)
    files = {"boot.py": _BOOT_IMAGE, "romfs.b64": base64.b64encode(img).decode(),
             "main.py": MAIN % (_WHERE, 1), "linktest_board.py": PROBE}  # no library, no firmware files
    with LinkedBoard(files=files) as b:
        assert b.request("pico/probe", "echo", b"from rom").data == b"from rom"
        r = b.request("pico/stats", "get_stats")
        assert r.is_success and b"ticks=" in r.data, r
        assert len(b.events([EventTopic.TICK], 3)) == 3
        with open(b.board.fs + "/where.txt") as f:
            where = dict(kv.split("=", 1) for kv in f.read().split(","))
    assert where["helix_app"] == "/rom/helix_app.mpy" and where["helix_link"] == "/rom/helix_link.mpy", where
    assert where["helix_ipc.link"] == "/rom/lib/helix_ipc/link.mpy", where
    assert all(f.startswith("/rom/") for f in where.values()), where


# -- `tools/deploy --romfs` -------------------------------------------------------------
# A stand-in ROMFS partition for the virtual board: a `vfs` module with rom_ioctl over a
# 256 KB buffer kept in /romfs.part (so it survives the board's resets), installed by its
# boot.py, which also mounts the partition at /rom as a board's firmware does. What it
# proves: the deploy's query, `mpremote romfs deploy` of the image, the files it copies
# and removes, and the reset into code from /rom; not a real flash partition.
_STANDIN = """\
# romstandin: vfs with a ROMFS partition stand-in (test_romfs), over /romfs.part
import vfs as _vfs

SIZE = 256 * 1024
BLOCK = 4096
PATH = "/romfs.part"
part = bytearray(SIZE)
try:
    with open(PATH, "rb") as _f:
        _f.readinto(part)
except OSError:
    pass


def rom_ioctl(op, *args):
    if op == 1:  # partitions
        return 1
    if args[0] != 0:
        return -19
    if op == 2:
        return memoryview(part)
    if op == 6:  # block size
        return BLOCK
    if op == 3:  # prepare (erase) the range
        off, n = (args[1], args[2]) if len(args) > 2 else (0, args[1])
        part[off:off + n] = bytes(n)
        return 16
    if op == 4:  # write
        part[args[1]:args[1] + len(args[2])] = args[2]
        return 0
    if op == 5:  # done
        with open(PATH, "wb") as f:
            f.write(part)
        return 0
    return -22


mount = _vfs.mount
umount = _vfs.umount
VfsRom = _vfs.VfsRom
VfsPosix = _vfs.VfsPosix
"""
_BOOT_STANDIN = """\
import sys
import romstandin
sys.modules["vfs"] = romstandin
if romstandin.part[:3] == b"\\xd2\\xcd\\x31":
    romstandin.mount(romstandin.VfsRom(romstandin.part), "/rom")
    sys.path[:0] = ["/rom", "/rom/lib"]
"""


def _deploy_sources(tmp):
    from test_deploy import _sources

    _sources(tmp)
    with open(tmp + "/firmware/fwmod.py", "w") as f:
        f.write("VALUE = 'fw'\n")
    with open(tmp + "/firmware/main.py", "w") as f:
        f.write("import helix_ipc, helix_board, fwmod\nf = open('/main.log', 'a')\n"
                "f.write('main %s %s %s\\n' % (helix_board.PROFILE['name'], helix_ipc.__file__, fwmod.__file__))\n"
                "f.close()\n")


def test_deploy_romfs_writes_the_image_and_removes_the_files_it_replaces():
    if support.MICROPYTHON:
        support.skip(_E2E)
    import os
    import tempfile

    from test_deploy import _deploy
    from test_vboard import _Board, _wait_for

    b = _Board({"romstandin.py": _STANDIN, "boot.py": _BOOT_STANDIN})
    try:
        with tempfile.TemporaryDirectory() as tmp:
            _deploy_sources(tmp)
            rc, out, err = _deploy(b.port, tmp)  # a files deploy first
            assert rc == 0, out + err
            _wait_for(lambda: b.exists("main.log"), "main.py after the files deploy")
            assert b.exists("lib/helix_ipc/bus.mpy") and b.exists("fwmod.py")
            os.remove(os.path.join(b.fs, "main.log"))

            rc, out, err = _deploy(b.port, tmp, "--romfs")
            assert rc == 0, out + err
            assert "ROMFS image written to partition 0" in out, out
            with open(os.path.join(tmp, "build", "helix.romfs"), "rb") as f:
                img = f.read()
            with open(os.path.join(b.fs, "romfs.part"), "rb") as f:
                assert f.read(len(img)) == img  # the partition holds the image, byte for byte
            # the files the image replaces are gone; main.py and the profile stay files
            assert not b.exists("lib/helix_ipc") or not os.listdir(os.path.join(b.fs, "lib", "helix_ipc")), out
            assert not b.exists("fwmod.py") and "stale /fwmod.py" in out, out
            assert b.exists("main.py") and b.exists("lib/helix_board.py")
            _wait_for(lambda: b.exists("main.log"), "main.py after the ROMFS deploy's reset")
            assert b.read("main.log").split() == ["main", "unix", "/rom/lib/helix_ipc/__init__.mpy",
                                                  "/rom/fwmod.mpy"], b.read("main.log")
    finally:
        b.close()


def test_deploy_romfs_to_a_board_without_romfs_stops_before_copying():
    if support.MICROPYTHON:
        support.skip(_E2E)
    import tempfile

    from test_deploy import _deploy, _error_line
    from test_vboard import _Board

    b = _Board()  # the unix port: no vfs.rom_ioctl
    try:
        with tempfile.TemporaryDirectory() as tmp:
            _deploy_sources(tmp)
            rc, out, err = _deploy(b.port, tmp, "--romfs", "--reset", "none")
            line = _error_line(err)
            assert rc == 1 and "no ROMFS" in line and "MICROPY_VFS_ROM" in line, err
            assert not b.exists("lib") and not b.exists("main.py")  # nothing copied
    finally:
        b.close()


def test_the_partition_is_checked_before_anything_is_written():
    # the rules deploy applies to the board's answer (HELIX-ROMFS <partitions> <size>)
    if support.MICROPYTHON:
        support.skip("host tool: tools/deploy runs under CPython")
    sys.path.insert(0, ROOT)
    from tools.deploy import romfs

    assert romfs.parse_board_rom("None None") == (None, None)  # no vfs.rom_ioctl
    assert romfs.parse_board_rom("1 131072") == (1, 131072)
    assert romfs.parse_board_rom("1 -1") == (1, -1)  # no such partition
    e = support.raises(romfs.RomfsError, romfs.check_fits, (None, None), 0, 10)
    assert "MICROPY_VFS_ROM" in str(e) and "without --romfs" in str(e), e
    e = support.raises(romfs.RomfsError, romfs.check_fits, (1, -1), 1, 10)
    assert "no ROMFS partition 1" in str(e) and "has 1" in str(e), e
    e = support.raises(romfs.RomfsError, romfs.check_fits, (0, -1), 0, 10)
    assert "no ROMFS partition 0" in str(e), e
    e = support.raises(romfs.RomfsError, romfs.check_fits, (1, 65536), 0, 65537)
    assert "65537 B" in str(e) and "65536 B" in str(e), e
    romfs.check_fits((1, 65536), 0, 65536)  # fits exactly
    assert romfs.flash_args("/x/helix.romfs", 1) == ["resume", "romfs", "-p", "1", "deploy", "/x/helix.romfs"]
