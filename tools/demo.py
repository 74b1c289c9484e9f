# tools/demo.py: `make demo` — the firmware on a virtual board, no hardware needed.
# Host-side (CPython):
#   1. start a virtual board (tools/vboard) in build/demo/ with an empty filesystem;
#   2. `make deploy BOARD=unix PORT=<its pty>` (mpy-cross + mpremote, then a reset);
#   3. show the board's console for a moment: main.py starting the system;
#   4. `mpremote run tools/demo_device.py`: ticks, requests and responses, counters;
#   5. stop the board.
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HOME = ROOT / "build" / "demo"


def say(text):
    print("\n### " + text, flush=True)


def start_board():
    if HOME.exists():
        shutil.rmtree(HOME)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tools.vboard", "--home", str(HOME), "--print-port"],
        cwd=str(ROOT), stdout=subprocess.PIPE, text=True,
    )
    port = proc.stdout.readline().strip()
    if not port:
        proc.kill()
        raise SystemExit("demo: the virtual board did not start")
    return proc, port


def show_console(port, seconds):
    import serial

    with serial.Serial(port, 115200, timeout=0.1) as ser:
        end = time.time() + seconds
        buf = b""
        while time.time() < end:
            buf += ser.read(256)
        for line in buf.decode(errors="replace").splitlines():
            if line.strip():
                print("  console| " + line.rstrip())


def main():
    say("starting a virtual board (the MicroPython unix port behind a pty)")
    board, port = start_board()
    try:
        print("port:", os.path.relpath(port, ROOT))
        say("make deploy BOARD=unix PORT=%s" % os.path.relpath(port, ROOT))
        subprocess.run(["make", "-s", "deploy", "BOARD=unix", "PORT=" + port], cwd=str(ROOT), check=True)
        say("the board reset: main.py starts the firmware (its console for 6 s)")
        show_console(port, 6)
        say("mpremote run tools/demo_device.py (Ctrl-C stops main.py first, timers released)")
        subprocess.run([str(BIN / "mpremote"), "connect", port, "run", "tools/demo_device.py"],
                       cwd=str(ROOT), check=True, timeout=120)
    finally:
        board.send_signal(signal.SIGTERM)
        try:
            board.wait(10)
        except subprocess.TimeoutExpired:
            board.kill()
    say("virtual board stopped")
    say("the serial link: the host asks the board's modules and watches its ticks over its pty")
    sys.path.insert(0, str(ROOT))
    from tools.link import demo as link_demo

    if link_demo.main() != 0:
        raise SystemExit("demo: the serial link demo failed")


if __name__ == "__main__":
    main()
