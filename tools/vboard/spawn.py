# tools/vboard/spawn.py: a virtual board (`python -m tools.vboard`) started as a process
# in a temporary home, for tests, benchmarks and demos (CPython, POSIX).
#
#   vb = VBoard({"main.py": "print('hi')\n"})   # files: {board path: text}, written first
#   vb.port (its pty), vb.fs (its "/" on this machine), vb.home, vb.proc; vb.close()
#
# close() stops the board (SIGTERM, then SIGKILL after 10 s) and removes its home.
# RuntimeError when the board printed no port within timeout_s.
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class VBoard:
    def __init__(self, files=None, args=(), timeout_s=30, prefix="helix-vboard-"):
        self.home = tempfile.mkdtemp(prefix=prefix)
        self.fs = os.path.join(self.home, "fs")
        for path, text in (files or {}).items():
            self.write(path, text)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tools.vboard", "--home", self.home, "--print-port"] + list(args),
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        self.port = self.proc.stdout.readline().strip() if ready else ""
        if not self.port:
            self.close()
            raise RuntimeError("the virtual board did not start")

    def path(self, path):
        """Where the board's `path` is on this machine."""
        return os.path.join(self.fs, path.lstrip("/"))

    def write(self, path, text):
        full = self.path(path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(text)

    def read(self, path):
        with open(self.path(path)) as f:
            return f.read()

    def exists(self, path):
        return os.path.exists(self.path(path))

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()
        shutil.rmtree(self.home, ignore_errors=True)
