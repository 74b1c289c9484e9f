# mqtt_support: a broker and bridges for the MQTT tests, the same on CPython and the unix
# port. The broker is the project's mosquitto (tools/cluster/broker.py), started and
# stopped through os.system on both interpreters (the unix port has no subprocess), on a
# free loopback port, with a fresh password per node; broker.json says where and who.
# Without mosquitto a test skips saying why, except under CI (CI=true), where `make test`
# must have installed it and a missing broker fails.
import json
import os
import sys

import support

ROOT = __file__.rsplit("/", 2)[0] if __file__.count("/") >= 2 else ".."
if not ROOT.startswith("/"):
    ROOT = os.getcwd() + "/" + ROOT
MPLIB = ROOT + "/.venv/mplib"


def _python():
    exe = sys.executable or ""
    d = exe.rsplit("/", 1)[0] if "/" in exe else ROOT + "/.venv/bin"
    for cand in (d + "/python", ROOT + "/.venv/bin/python"):
        try:
            os.stat(cand)
            return cand
        except OSError:
            pass
    return "python3"


def _unavailable(why):
    if os.getenv("CI"):
        raise AssertionError("CI: " + why)
    support.skip(why)


def _run(args):
    # os.system on both interpreters; the status is 0 on success
    return os.system(_python() + " " + ROOT + "/tools/cluster/broker.py " + args + " >/dev/null")


def need_client():
    """Make the MQTT client of this interpreter importable, or skip saying why."""
    if support.MICROPYTHON:
        if MPLIB not in sys.path:
            sys.path.append(MPLIB)
        try:
            import umqtt.simple  # noqa: F401
        except ImportError:
            _unavailable("umqtt.simple is not in .venv/mplib (`make test` installs it from "
                         "requirements/micropython-lib.txt)")
    else:
        try:
            import paho.mqtt.client  # noqa: F401
        except ImportError:
            _unavailable("paho-mqtt is not installed (`make venv` installs requirements/host.txt)")


_homes = [0]


class Broker:
    """The project's mosquitto on 127.0.0.1 for these node names. Always stop() it, or
    use it as `with Broker("A", "B") as broker:` (stopped when the block ends)."""

    def __enter__(self):
        return self

    def __exit__(self, _t, _v, _tb):
        self.stop()

    def __init__(self, *nodes):
        need_client()
        if _run("missing -") != 0:
            _unavailable("mosquitto is not installed (Debian package mosquitto; `make test` "
                         "installs it with apt-get as root)")
        _homes[0] += 1
        self.home = "/tmp/helix-mqtt-%d-%d-%d" % (os.getpid() if hasattr(os, "getpid") else 0,
                                                   _homes[0], _rand())
        if _run("start %s %s" % (self.home, " ".join(nodes))) != 0:
            raise AssertionError("the broker did not start (see %s/mosquitto.out)" % self.home)
        self._load()
        self.running = True

    def _load(self):
        with open(self.home + "/broker.json") as f:
            state = json.load(f)
        self.port = state["port"]
        self.users = state["users"]

    def password(self, node):
        return self.users[node]

    def pause(self):
        """Stop the broker for now (start_again() brings it back)."""
        if self.running:
            _run("stop " + self.home)
            self.running = False

    def stop(self):
        """Stop it for good and remove its files."""
        self.pause()
        if self.home.startswith("/tmp/helix-mqtt-"):
            os.system("rm -rf " + self.home)

    def start_again(self):
        """Start it again after stop(): same port, same users."""
        if _run("restart " + self.home) != 0:
            raise AssertionError("the broker did not restart")
        self.running = True

    def log(self):
        try:
            with open(self.home + "/mosquitto.log") as f:
                return f.read()
        except OSError:
            return ""


def _rand():
    try:
        return int.from_bytes(os.urandom(3), "big")
    except AttributeError:
        return 0


def client(broker, node, password=None):
    """The adapter of this interpreter for `node` (its own password unless given)."""
    from helix_ipc.mqtt import client_for

    return client_for("127.0.0.1", broker.port, node,
                      broker.password(node) if password is None else password, 10)


def bridge(broker, node, password=None, **kw):
    """A Bridge for `node` with its own bus and router (not the global ones)."""
    from helix_ipc import EventBus, MessageRouter
    from helix_ipc.mqtt import Bridge

    b = Bridge(node, client(broker, node, password), EventBus(), MessageRouter(), **kw)
    b.errors = []
    b.error_hook = lambda where, error: b.errors.append((where, str(error)))
    return b


def pump(bridges, until, timeout_ms=5000, serve=()):
    """Poll every bridge (and process the mailboxes of the (router, module_id) pairs in
    serve) until until() is true; returns whether it became true in time."""
    import time

    from helix_ipc._compat import ticks_diff, ticks_ms

    t0 = ticks_ms()
    while True:
        for b in bridges:
            b.poll()
        for r, mid in serve:
            r.process_mailbox(mid, 8)
        if until():
            return True
        if ticks_diff(ticks_ms(), t0) > timeout_ms:
            return False
        time.sleep(0.002)


class Raw:
    """A bare MQTT client (no bridge) that collects what it receives: the attacker, the
    witness. msgs: [(topic str, payload bytes)]."""

    def __init__(self, broker, node, password=None, will=None):
        self.msgs = []
        self.c = client(broker, node, password)
        will = will or ("helix/%s/status" % node, b"offline")
        self.c.connect(will[0], will[1], self._deliver)

    def _deliver(self, topic, payload):
        if not isinstance(topic, str):
            topic = bytes(topic).decode()
        self.msgs.append((topic, bytes(payload)))

    def poll(self):
        self.c.poll(32)
        return 0

    def got(self, topic):
        return [p for t, p in self.msgs if t == topic]


class FreezeProxy:
    """host_tests/tcp_freeze.py in front of the broker: freeze() makes every connection
    through it go silent (nothing forwarded, nothing closed). Always stop() it."""

    def __init__(self, broker):
        import time

        self.state = broker.home + "/freeze.json"
        os.system("%s %s/host_tests/tcp_freeze.py %d %s >/dev/null 2>&1 &" % (
            _python(), ROOT, broker.port, self.state))
        for _ in range(500):
            try:
                with open(self.state) as f:
                    st = json.load(f)
                break
            except (OSError, ValueError):
                time.sleep(0.01)
        else:
            raise AssertionError("tcp_freeze.py did not start")
        self.port = st["port"]
        self.pid = st["pid"]

    def freeze(self):
        os.system("kill -USR1 %d" % self.pid)

    def stop(self):
        os.system("kill -TERM %d 2>/dev/null" % self.pid)
