# tools/cluster/broker.py: start and stop the project's mosquitto on loopback (CPython).
#
#   python tools/cluster/broker.py start HOME NODE [NODE ...]   prints the port
#   python tools/cluster/broker.py stop HOME
#   python tools/cluster/broker.py restart HOME [--down-s S]    same port, same users
#   python tools/cluster/broker.py missing -                     exit 3 (and why) without mosquitto
#
# `start` picks a free port on 127.0.0.1, makes a random password per node (the node's
# name is its user name), writes HOME/passwords with mosquitto_passwd, HOME/mosquitto.conf
# from tools/cluster/mosquitto.conf with tools/cluster/acl, starts mosquitto in its own
# session (under `timeout`, so a test that dies cannot leave it running for more than
# --max-s seconds) and waits until it accepts connections. HOME/broker.json (mode 0600)
# holds {"port", "pid", "users": {node: password}}: how tests (on either interpreter, the
# unix port runs this script with os.system) and the demo's nodes learn where and who.
# Broker(home, nodes) is the same from Python.
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
START_TIMEOUT_S = 10


class BrokerError(Exception):
    pass


def find(cmd):
    """The path of a mosquitto command, or None (Debian puts mosquitto in /usr/sbin)."""
    return shutil.which(cmd) or shutil.which(cmd, path="/usr/sbin:/usr/bin:/usr/local/sbin")


def missing():
    """Why no broker can run here (a string), or None when mosquitto is installed."""
    for cmd in ("mosquitto", "mosquitto_passwd"):
        if find(cmd) is None:
            return ("%s is not installed (Debian package mosquitto; `make test` installs it "
                    "with apt-get when it runs as root)" % cmd)
    return None


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _user():
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


class Broker:
    def __init__(self, home, nodes=(), port=None, max_s=900):
        self.home = os.path.abspath(home)
        self.nodes = list(nodes)
        self.port = port
        self.max_s = max_s
        self.proc = None
        self.pid = None
        self.users = {}

    # -- files -----------------------------------------------------------------------
    def _state_path(self):
        return os.path.join(self.home, "broker.json")

    def _write_state(self):
        path = self._state_path()
        fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"port": self.port, "pid": self.pid, "users": self.users}, f)
        os.replace(path + ".tmp", path)

    @classmethod
    def load(cls, home):
        with open(os.path.join(home, "broker.json")) as f:
            state = json.load(f)
        b = cls(home, sorted(state["users"]), state["port"])
        b.pid = state["pid"]
        b.users = state["users"]
        return b

    def _configure(self):
        os.makedirs(self.home, exist_ok=True)
        passwords = os.path.join(self.home, "passwords")
        if not self.users:
            self.users = {n: os.urandom(12).hex() for n in self.nodes}
        if os.path.exists(passwords):
            os.unlink(passwords)
        open(passwords, "w").close()
        os.chmod(passwords, 0o600)
        for name, pw in sorted(self.users.items()):
            subprocess.run([find("mosquitto_passwd"), "-b", passwords, name, pw],
                           check=True, capture_output=True)
        with open(os.path.join(HERE, "mosquitto.conf")) as f:
            conf = f.read()
        for key, value in (("PORT", str(self.port)), ("PASSWORDS", passwords),
                           ("ACL", os.path.join(HERE, "acl")), ("USER", _user()),
                           ("LOG", os.path.join(self.home, "mosquitto.log"))):
            conf = conf.replace("@%s@" % key, value)
        path = os.path.join(self.home, "mosquitto.conf")
        with open(path, "w") as f:
            f.write(conf)
        return path

    # -- life ------------------------------------------------------------------------
    def start(self):
        why = missing()
        if why:
            raise BrokerError(why)
        if self.port is None:
            self.port = free_port()
        conf = self._configure()
        out = open(os.path.join(self.home, "mosquitto.out"), "ab")
        self.proc = subprocess.Popen(
            ["timeout", "--signal=TERM", str(self.max_s), find("mosquitto"), "-c", conf],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
        out.close()
        self.pid = self.proc.pid
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                raise BrokerError("mosquitto exited with %s; see %s" % (
                    self.proc.returncode, os.path.join(self.home, "mosquitto.out")))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise BrokerError("mosquitto did not listen on 127.0.0.1:%d in %d s"
                                      % (self.port, START_TIMEOUT_S))
                time.sleep(0.05)
        self._write_state()
        return self.port

    def stop(self):
        if self.pid is None:
            return
        try:
            os.killpg(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if self.proc is not None:
                if self.proc.poll() is not None:
                    break
            else:
                try:
                    os.kill(self.pid, 0)
                except ProcessLookupError:
                    break
            time.sleep(0.02)
        else:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.pid = None
        self.proc = None
        # wait until the port is free again (a restart binds it at once)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                time.sleep(0.02)
            except OSError:
                break
        self._write_state()

    def restart(self, down_s=0.0):
        self.stop()
        time.sleep(down_s)
        return self.start()

    def password(self, node):
        return self.users[node]


def main(argv):
    if len(argv) < 2 or argv[0] not in ("start", "stop", "restart", "missing"):
        print(__doc__ if __doc__ else "usage: broker.py start|stop|restart HOME ...", file=sys.stderr)
        return 2
    cmd, home = argv[0], argv[1]
    if cmd == "missing":  # exit 3 and say why when no broker can run here
        why = missing()
        if why:
            print(why)
            return 3
        return 0
    try:
        if cmd == "start":
            print(Broker(home, argv[2:]).start())
        elif cmd == "stop":
            Broker.load(home).stop()
        elif cmd == "restart":
            down = float(argv[3]) if len(argv) > 3 and argv[2] == "--down-s" else 0.0
            print(Broker.load(home).restart(down))
    except BrokerError as e:
        print("broker: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
