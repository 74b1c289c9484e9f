# test_mqtt_demo: `make demo-cluster` (tools/cluster/demo.py) end to end: mosquitto, two
# virtual boards on the unix port and the host node; the flows it must show, and that it
# leaves nothing running. CPython drives the processes, so the unix-port items skip (the
# boards in it are unix-port processes: those items would only run the same demo again).
import support

_DRIVES = "drives processes with CPython's subprocess; the demo's boards are unix-port processes"


def test_demo_cluster_shows_every_flow_and_stops_everything():
    if not support.CPYTHON:
        support.skip(_DRIVES)
    import os
    import subprocess
    import sys

    from mqtt_support import Broker  # noqa: F401 - skips (or fails under CI) without mosquitto

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    probe = Broker("probe")
    probe.stop()
    proc = subprocess.run([sys.executable, os.path.join(root, "tools", "cluster", "demo.py")],
                          cwd=root, capture_output=True, text=True, timeout=120)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    lines = out.splitlines()

    def index(text):
        for i, line in enumerate(lines):
            if text in line:
                return i
        raise AssertionError("no line with %r in:\n%s" % (text, out))

    home = out.split("passwords in ", 1)[1].split(")", 1)[0]
    # ticks from A reach B and the host
    index("[board B] B: tick 3 from A (3 received)")
    index("[host] tick 3 from A")
    # the host asks B for its stats over MQTT and prints the answer
    ans = index("[host] B answered in")
    assert "Response.Success(b'node=B uptime_ms=" in lines[ans] and "ticks_received=" in lines[ans]
    # board A stopped: the others print that it went offline (after the answer)
    assert index("[host] A is offline") > ans
    assert index("[board B] B: A is offline") > ans
    assert lines[-1] == "demo-cluster: OK"
    # everything stopped, broker included
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert home not in ps, [p for p in ps.splitlines() if home in p]
