# tools/link/faultpty.py: a proxy pseudo-terminal between a host and a board's port that
# corrupts, drops and delays bytes, or stops passing them (a cable pulled), for the link's
# fault tests (CPython, POSIX; one thread with a select() loop).
#
#   fp = FaultPty("/dev/ttyACM0").start()   # connect the host to fp.port instead
#                                            (target: a port path, or an open fd)
#   fp.corrupt["up"] = 0.01                  # per byte, host -> board ("down": board -> host)
#   fp.drop["down"] = 0.01; fp.delay_ms = 50; fp.passing = False; ...; fp.stop()
#
# A corrupted byte is replaced by a random byte other than 0x03: a Ctrl-C reaching a
# board's REPL line interrupts main.py (as a real board's would), which is the REPL's
# behaviour, not the link's. Counters: `passed`, `corrupted`, `dropped` per direction.
import os
import random
import select
import threading
import time
import tty


class FaultPty:
    def __init__(self, target, seed=1):
        self.rng = random.Random(seed)
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)  # kept open: the master never sees EIO when a client leaves
        tty.setraw(self.master)
        self.port = os.ttyname(self._slave)
        if isinstance(target, int):  # an open fd (e.g. the master of another pty)
            self.target = target
            os.set_blocking(target, False)
        else:
            self.target = os.open(target, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
            tty.setraw(self.target)
        os.set_blocking(self.master, False)
        self.corrupt = {"up": 0.0, "down": 0.0}
        self.drop = {"up": 0.0, "down": 0.0}
        self.delay_ms = 0
        self.passing = True
        self.passed = {"up": 0, "down": 0}
        self.corrupted = {"up": 0, "down": 0}
        self.dropped = {"up": 0, "down": 0}
        self._queues = {"up": [], "down": []}  # (due time, bytes)
        self._stop = False
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop = True
        if self._thread is not None:
            self._thread.join(5)
        for fd in (self.master, self._slave, self.target):
            try:
                os.close(fd)
            except OSError:
                pass

    def _mangle(self, way, data):
        out = bytearray()
        c, d = self.corrupt[way], self.drop[way]
        rng = self.rng
        for b in data:
            if d and rng.random() < d:
                self.dropped[way] += 1
                continue
            if c and rng.random() < c:
                n = rng.randrange(255)
                b = n + 1 if n >= 3 else n  # anything but 0x03
                self.corrupted[way] += 1
            out.append(b)
        return bytes(out)

    def _loop(self):
        ends = {"up": (self.master, self.target), "down": (self.target, self.master)}
        while not self._stop:
            try:
                r, _, _ = select.select([self.master, self.target], [], [], 0.01)
            except (OSError, ValueError):
                return
            now = time.monotonic()
            for way, (src, dst) in ends.items():
                if src in r:
                    try:
                        data = os.read(src, 4096)
                    except (BlockingIOError, OSError):
                        data = b""
                    if data and self.passing:
                        self._queues[way].append((now + self.delay_ms / 1000, self._mangle(way, data)))
                q = self._queues[way]
                while q and q[0][0] <= now:
                    data = q.pop(0)[1]
                    try:
                        os.write(dst, data)
                        self.passed[way] += len(data)
                    except OSError:
                        self.dropped[way] += len(data)
