# tools/vboard/host.py: the host side of the virtual board (CPython).
#
# A virtual board is a MicroPython unix-port process (tools/vboard/device/) behind a
# pseudo-terminal, speaking MicroPython's REPL protocols there, so that the real mpremote
# (and `make deploy`, `make repl`) work against it unchanged.
#
#   client (mpremote) <-> pty A (the board's "serial port", home/tty links to it)
#                         <-> this process <-> pty B <-> device process (micropython)
#
# The host copies bytes both ways. Pty B is the device's controlling terminal: while
# device code runs, the device turns ISIG on, so a \x03 written into it becomes SIGINT
# (KeyboardInterrupt in the device), as a board's UART/USB interrupt does; at the prompts
# ISIG is off and \x03 is data. Resets are process restarts requested over a control
# pipe (see device/_vboard.py), so the port path never changes. Output the client cannot
# take is held back (the device then blocks, as on a flow-controlled USB CDC port) while a
# client has the port open, and dropped when nobody does.
#
# Single-threaded: one select() loop. Stops cleanly on SIGTERM, SIGINT and SIGHUP.
import argparse
import fcntl
import os
import select
import signal
import subprocess
import sys
import termios
import time
import tty
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEVICE_MAIN = Path(__file__).resolve().parent / "device" / "vboard_main.py"
HOSTLIB = ROOT / "tools" / "hostmachine"

_CHUNK = 65536
_CLIENT_BACKLOG = 65536  # stop reading the device above this much unsent output
_DEVICE_BACKLOG = 4096  # stop reading the client above this much unsent input
_CRASH_WINDOW_S = 10.0
_CRASH_LIMIT = 5  # unexpected device exits within the window before the host gives up


def _default_micropython():
    here = Path(sys.executable).parent / "micropython"
    return str(here) if here.exists() else "micropython"


class BoardError(Exception):
    """The virtual board cannot run (bad setup, or its device process keeps dying)."""


class VirtualBoard:
    """One virtual board: a home folder (home/fs is the board's filesystem, home/tty
    links to its serial port), a pty pair and the device process."""

    def __init__(self, home, fs=None, micropython=None, hostlib=HOSTLIB, machine_board=None,
                 heapsize=None, log=None):
        self.home = Path(home).resolve()
        self.fs = Path(fs).resolve() if fs else self.home / "fs"
        self.link = self.home / "tty"
        self.micropython = micropython or _default_micropython()
        self.hostlib = Path(hostlib).resolve() if hostlib else None
        self.machine_board = machine_board
        self.heapsize = heapsize
        self.log = log or (lambda msg: sys.stderr.write("vboard: %s\n" % msg))
        self.proc = None
        self.mode = "F"
        self.ctl_r = None
        self.to_device = bytearray()
        self.to_client = bytearray()
        self.dropped = 0  # output bytes dropped while no client had the port open
        self.resets = {"soft": 0, "hard": 0, "crash": 0}
        self._crashes = []
        self._client_seen = (0.0, False)
        self._stopping = False

    # -- set-up ----------------------------------------------------------------------
    def open(self):
        """Create the ptys and the port link; returns the port path (the link)."""
        if not Path(self.micropython).exists() and "/" in self.micropython:
            raise BoardError("micropython binary not found: %s (run `make venv`)" % self.micropython)
        self.fs.mkdir(parents=True, exist_ok=True)
        self.ma, self.sa = os.openpty()
        tty.setraw(self.sa)
        self.mb, self.sb = os.openpty()
        self._device_termios()
        os.set_blocking(self.ma, False)
        os.set_blocking(self.mb, False)
        self.port = os.ttyname(self.sa)
        tmp = self.link.with_name(self.link.name + ".new")
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        tmp.symlink_to(self.port)
        os.replace(tmp, self.link)
        return str(self.link)

    def _device_termios(self):
        # Raw input; output cooked only by "\n" -> "\r\n"; no flushing on signals; only
        # VINTR (\x03) may ever generate a signal, and only while the device sets ISIG.
        tty.setraw(self.sb)
        a = termios.tcgetattr(self.sb)
        a[1] = termios.OPOST | termios.ONLCR
        a[3] = termios.NOFLSH
        a[6][termios.VINTR] = b"\x03"
        a[6][termios.VQUIT] = b"\x00"
        a[6][termios.VSUSP] = b"\x00"
        termios.tcsetattr(self.sb, termios.TCSANOW, a)

    def _spawn(self, mode):
        self._device_termios()  # a killed device may have left ISIG on
        r, w = os.pipe()
        cmd = [self.micropython]
        if self.heapsize:
            cmd += ["-X", "heapsize=%s" % self.heapsize]
        cmd += [str(DEVICE_MAIN), str(self.fs), str(self.hostlib or ""), str(w), mode]
        env = dict(os.environ)
        env.pop("MICROPYPATH", None)
        if self.machine_board:
            env["HELIX_MACHINE_BOARD"] = self.machine_board

        def become_session_leader():  # runs in the child: pty B becomes its terminal
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(
            cmd, stdin=self.sb, stdout=self.sb, stderr=self.sb, pass_fds=(w,),
            preexec_fn=become_session_leader, env=env, cwd=str(self.fs),
        )
        os.close(w)
        self.ctl_r = r
        self.mode = mode

    def _kill(self):
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.proc = None
        if self.ctl_r is not None:
            os.close(self.ctl_r)
            self.ctl_r = None

    def restart(self, mode, hard):
        """Replace the device process (a reset); hard also empties its input queue."""
        self._kill()
        if hard:
            termios.tcflush(self.sb, termios.TCIFLUSH)
            self.to_device.clear()
        self._spawn(mode)

    # -- the loop --------------------------------------------------------------------
    def serve(self, on_ready=None):
        """Run until SIGTERM/SIGINT/SIGHUP (or stop()). on_ready() is called once the
        device process started."""
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        os.set_blocking(wake_r, False)
        old_fd = signal.set_wakeup_fd(wake_w)
        old = {}
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            old[sig] = signal.signal(sig, self._on_signal)
        try:
            self._spawn("F")
            if on_ready is not None:
                on_ready()
            while not self._stopping:
                self._step(wake_r)
        finally:
            signal.set_wakeup_fd(old_fd)
            for sig, handler in old.items():
                signal.signal(sig, handler)
            os.close(wake_r)
            os.close(wake_w)
            self.close()

    def _on_signal(self, signum, frame):
        self._stopping = True

    def stop(self):
        self._stopping = True

    def _step(self, wake_r):
        rfds = [wake_r, self.mb] if len(self.to_client) < _CLIENT_BACKLOG else [wake_r]
        if len(self.to_device) < _DEVICE_BACKLOG:
            rfds.append(self.ma)
        if self.ctl_r is not None:
            rfds.append(self.ctl_r)
        wfds = []
        if self.to_device:
            wfds.append(self.mb)
        if self.to_client:
            wfds.append(self.ma)
        try:
            r, w, _ = select.select(rfds, wfds, [], 0.5)
        except InterruptedError:
            return
        if wake_r in r:
            try:
                os.read(wake_r, 64)
            except BlockingIOError:
                pass
        if self.mb in r:
            self._read_device()
        if self.ma in r:
            self._read_client()
        if self.to_device:
            self._write_device()
        if self.to_client:
            self._write_client()
        if self.ctl_r is not None and self.ctl_r in r:
            self._control()
        elif self.proc is not None and self.proc.poll() is not None:
            self._crashed()

    def _read_device(self):
        try:
            data = os.read(self.mb, _CHUNK)
        except (BlockingIOError, OSError):
            return
        self.to_client += data

    def _read_client(self):
        try:
            data = os.read(self.ma, _CHUNK)
        except (BlockingIOError, OSError):
            return
        if b"\x03" in data and self.to_device and self._device_isig():
            # Input is queued behind a busy device: deliver Ctrl-C now, as the line
            # discipline would once the byte got through.
            data = data.replace(b"\x03", b"")
            self._interrupt()
        self.to_device += data

    def _device_isig(self):
        try:
            return bool(termios.tcgetattr(self.mb)[3] & termios.ISIG)
        except termios.error:
            return False

    def _interrupt(self):
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGINT)
            except ProcessLookupError:
                pass

    def _write_device(self):
        try:
            n = os.write(self.mb, self.to_device)
        except (BlockingIOError, OSError):
            return
        del self.to_device[:n]

    def _write_client(self):
        try:
            n = os.write(self.ma, self.to_client)
        except BlockingIOError:
            if not self._client_attached():
                self.dropped += len(self.to_client)
                self.to_client.clear()
                termios.tcflush(self.sa, termios.TCIFLUSH)  # no stale output for the next client
            return
        except OSError:
            return
        del self.to_client[:n]

    def _client_attached(self):
        """Does a process other than this one have the port open? (cached 0.5 s)"""
        now = time.monotonic()
        checked, attached = self._client_seen
        if now - checked < 0.5:
            return attached
        attached = False
        me = str(os.getpid())
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or pid == me:
                continue
            try:
                fds = os.listdir("/proc/%s/fd" % pid)
            except OSError:
                continue
            for fd in fds:
                try:
                    if os.readlink("/proc/%s/fd/%s" % (pid, fd)) == self.port:
                        attached = True
                        break
                except OSError:
                    continue
            if attached:
                break
        self._client_seen = (now, attached)
        return attached

    def _control(self):
        try:
            rec = os.read(self.ctl_r, 16)
        except OSError:
            rec = b""
        if rec[:1] == b"S" and rec[1:2] in (b"R", b"F"):
            self.resets["soft"] += 1
            self.restart(rec[1:2].decode(), hard=False)
        elif rec[:1] == b"H":
            self.resets["hard"] += 1
            self.restart("F", hard=True)
        elif rec:
            self.log("unknown control record %r from the device" % (rec,))
        else:
            self._crashed()

    def _crashed(self):
        # The device process ended without asking for a reset: restart it like a
        # watchdog would, unless it keeps dying.
        code = self.proc.wait() if self.proc is not None else None
        self._drain_device()
        self.resets["crash"] += 1
        now = time.monotonic()
        self._crashes = [t for t in self._crashes if now - t < _CRASH_WINDOW_S] + [now]
        if len(self._crashes) >= _CRASH_LIMIT:
            self._stopping = True
            raise BoardError("device process died %d times in %.0f s (last exit code %s)"
                             % (len(self._crashes), _CRASH_WINDOW_S, code))
        self.log("device process exited with code %s: restarting it" % (code,))
        self.restart("F", hard=True)

    def _drain_device(self):
        while True:
            try:
                data = os.read(self.mb, _CHUNK)
            except (BlockingIOError, OSError):
                return
            if not data:
                return
            self.to_client += data

    def close(self):
        """Stop the device process and remove the port link."""
        self._kill()
        try:
            if self.link.is_symlink() and os.readlink(self.link) == getattr(self, "port", None):
                self.link.unlink()
        except OSError:
            pass
        for name in ("ma", "sa", "mb", "sb"):
            fd = getattr(self, name, None)
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
                setattr(self, name, None)


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="python -m tools.vboard",
        description="Run a virtual MicroPython board (unix port) behind a pseudo-terminal.")
    ap.add_argument("--name", default="unix", help="board name: its home is build/vboard/NAME (default unix)")
    ap.add_argument("--home", help="home folder (default build/vboard/NAME): fs/ is the board's filesystem, tty its port")
    ap.add_argument("--fs", help="the board's filesystem folder (default HOME/fs)")
    ap.add_argument("--machine-board", choices=("rp2", "esp32"),
                    help="flavour of tools/hostmachine's machine module (default: its own, rp2)")
    ap.add_argument("--no-hostmachine", action="store_true", help="do not load tools/hostmachine as `machine`")
    ap.add_argument("--heapsize", help="MicroPython heap size, e.g. 192K (default: the unix port's)")
    ap.add_argument("--micropython", help="the MicroPython unix binary (default: .venv/bin/micropython)")
    ap.add_argument("--print-port", action="store_true", help="print the port path on stdout once the board runs")
    args = ap.parse_args(argv)
    home = args.home or str(ROOT / "build" / "vboard" / args.name)
    board = VirtualBoard(home, fs=args.fs, micropython=args.micropython,
                         hostlib=None if args.no_hostmachine else HOSTLIB,
                         machine_board=args.machine_board, heapsize=args.heapsize)
    try:
        port = board.open()
    except (BoardError, OSError) as e:
        sys.stderr.write("vboard: cannot start: %s\n" % e)
        return 1

    def ready():
        board.log("%s: port %s (-> %s), filesystem %s" % (args.name, port, board.port, board.fs))
        if args.print_port:
            sys.stdout.write(port + "\n")
            sys.stdout.flush()

    try:
        board.serve(on_ready=ready)
    except BoardError as e:
        sys.stderr.write("vboard: stopped: %s\n" % e)
        return 1
    board.log("stopped (resets: %(soft)d soft, %(hard)d hard, %(crash)d crashes)" % board.resets)
    return 0
