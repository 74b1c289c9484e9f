# tcp_freeze: a loopback TCP forwarder that can go silent, for the MQTT tests (CPython).
#
#   python host_tests/tcp_freeze.py TARGET_PORT STATEFILE
#
# Listens on a free 127.0.0.1 port and forwards each connection to 127.0.0.1:TARGET_PORT;
# writes {"port", "pid"} to STATEFILE once listening. SIGUSR1 freezes every connection
# open now: nothing more is forwarded either way and nothing is closed, as when a Wi-Fi
# link dies without a word. Connections made later are forwarded. SIGTERM (or 120 s)
# ends it. The MQTT tests start it with os.system on both interpreters.
import json
import os
import signal
import socket
import sys
import threading
import time

conns = []  # [frozen flag list per connection]


def pipe(src, dst, flag):
    try:
        while True:
            data = src.recv(4096)
            if not data:
                break
            while flag[0]:
                time.sleep(0.05)
            dst.sendall(data)
    except OSError:
        pass
    if not flag[0]:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def freeze(_sig, _frame):
    for flag in conns:
        flag[0] = True


def main():
    target, state = int(sys.argv[1]), sys.argv[2]
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    signal.signal(signal.SIGUSR1, freeze)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGALRM, lambda *_: os._exit(0))
    signal.alarm(120)
    with open(state + ".tmp", "w") as f:
        json.dump({"port": srv.getsockname()[1], "pid": os.getpid()}, f)
    os.replace(state + ".tmp", state)
    while True:
        try:
            c, _ = srv.accept()
        except InterruptedError:
            continue
        up = socket.create_connection(("127.0.0.1", target))
        flag = [False]
        conns.append(flag)
        for a, b in ((c, up), (up, c)):
            threading.Thread(target=pipe, args=(a, b, flag), daemon=True).start()


if __name__ == "__main__":
    main()
