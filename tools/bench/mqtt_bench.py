# tools/bench/mqtt_bench.py: the `mqtt` section of `make bench` (CPython host side).
#
#   python tools/bench/mqtt_bench.py [--events N] [--requests N]
#
# Starts the project's mosquitto on loopback (tools/cluster/broker.py), runs
# tools/bench/mqtt_device.py on the unix port in both modes ("unix", and "board":
# sys.exc_info hidden, proven afterwards), and reports per mode: events through the
# bridge (A's bus -> broker -> B's bus) against bare umqtt clients doing the same in the
# same run (a publish loop, and a publish -> receive loop of the same shape), and the
# request round trip (median, p99) through router.queue("B/stats") against a bare
# QoS 1 request/answer between two umqtt clients. rows() gives run.py its table rows.
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "tools" / "cluster"))

import broker as broker_mod  # noqa: E402

MICROPYTHON = str(Path(sys.executable).parent / "micropython")
EVENTS = "mqtt: event A bus -> bridge -> broker -> bridge -> B bus"
BARE_RX = "mqtt: bare publish -> bare receive (QoS 0)"
BARE_TX = "mqtt: bare umqtt publish loop (QoS 0)"
RTT = "mqtt: router.queue('B/stats') round trip (QoS 1)"
BARE_RTT = "mqtt: bare request/answer round trip (QoS 1)"
EXPORT = "mqtt: bridge alone, export (publish -> encode -> client)"
IMPORT = "mqtt: bridge alone, import (client -> decode -> bus)"
NAMES = (BARE_TX, BARE_RX, EVENTS, EXPORT, IMPORT, BARE_RTT, RTT)


def _skipped(why):
    return [{"name": n, "group": "mqtt", "mode": m, "skipped": why} for n in NAMES for m in ("unix", "board")]


def rows(extra=()):
    why = broker_mod.missing()
    if why:
        return _skipped(why)
    if not (ROOT / ".venv" / "mplib" / "umqtt" / "simple.py").exists():
        return _skipped("umqtt.simple is not in .venv/mplib (make mqtt-deps)")
    home = tempfile.mkdtemp(prefix="helix-mqtt-bench-")
    b = broker_mod.Broker(home, ["A", "B"])
    b.start()
    out = []
    try:
        for mode in ("unix", "board"):
            cmd = [MICROPYTHON, "-X", "heapsize=16M", str(HERE / "mqtt_device.py"), home] + list(extra)
            if mode == "board":
                cmd.append("--board")
            proc = subprocess.run(cmd, cwd=str(ROOT), capture_output=True, text=True, timeout=600)
            got = {}
            proven = mode != "board"
            for line in proc.stdout.splitlines():
                if line.startswith("{"):
                    r = json.loads(line)
                    if "board_mode" in r:
                        proven = r["board_mode"]
                    else:
                        got[r["name"]] = r
            if proc.returncode != 0 or not proven:
                why = "mqtt_device.py exit %d%s: %s" % (
                    proc.returncode, "" if proven else " (board mode not proven)",
                    (proc.stderr or proc.stdout).strip().splitlines()[-1:] or "")
                out += [{"name": n, "group": "mqtt", "mode": mode, "skipped": why} for n in NAMES]
                continue
            for name in NAMES:
                r = dict(got[name], group="mqtt", mode=mode)
                ref = {EVENTS: BARE_RX, RTT: BARE_RTT}.get(name)
                if ref:
                    r["ref"] = ref.split(": ", 1)[1]
                    r["ratio"] = r["ns_per_op"] / got[ref]["ns_per_op"]
                out.append(r)
                if "p99_us" in r:
                    p = {"name": name.replace("round trip", "round trip p99"), "group": "mqtt", "mode": mode,
                         "ns_per_op": r["p99_us"] * 1000}
                    if ref:
                        p["ref"] = "bare p99"
                        p["ratio"] = r["p99_us"] / got[ref]["p99_us"]
                    out.append(p)
    finally:
        b.stop()
        shutil.rmtree(home, ignore_errors=True)
    return out


def main(argv):
    rs = rows(argv)
    print("MQTT through the local mosquitto, unix port (umqtt.simple), one process, two nodes:")
    for r in rs:
        if "skipped" in r:
            print("  %-6s %-58s skipped: %s" % (r["mode"], r["name"], r["skipped"]))
            continue
        what = ("%d/s" % r["per_s"]) if "per_s" in r else ("median %d us, p99 %d us" % (r["median_us"], r["p99_us"])
                                                           if "median_us" in r else "%d ns" % r["ns_per_op"])
        if "bytes_per_op" in r:
            what += ", %d B/event" % r["bytes_per_op"]
        ratio = " (%.2fx %s)" % (r["ratio"], r["ref"]) if r.get("ratio") else ""
        print("  %-6s %-58s %s%s" % (r["mode"], r["name"], what, ratio))
    return 1 if any("skipped" in r for r in rs) else 0


if __name__ == "__main__":
    os.chdir(str(ROOT))
    sys.exit(main(sys.argv[1:]))
