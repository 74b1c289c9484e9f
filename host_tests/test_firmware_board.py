# The real firmware on the virtual board, end to end through `tools/deploy` and the real
# mpremote: deploy, let main.py run, Ctrl-C (mpremote's connect) stops it cleanly, read
# the stats over the REPL, redeploy after a change copies only that file, soft reset
# starts afresh. Host processes only: under MicroPython each test skips.
import support
from test_vboard import _Board

_E2E = "end-to-end: drives host processes through CPython's subprocess/pty"


def _deploy(port, *extra):
    """tools/deploy --board unix --port PORT [extra...]; must succeed; returns stdout.
    Builds in a private folder unless extra names one (several sessions may run the
    suite in one checkout: build/deploy/unix would be shared)."""
    import os
    import shutil
    import subprocess
    import sys
    import tempfile
    from test_vboard import _root

    tmp = None
    if "--build-dir" not in extra:
        tmp = tempfile.mkdtemp(prefix="helix-build-")
        extra = extra + ("--build-dir", tmp)
    try:
        proc = subprocess.run(
            [sys.executable, os.path.join(_root(), "tools", "deploy"), "--board", "unix", "--port", port] + list(extra),
            capture_output=True, text=True, timeout=120, cwd=_root())
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _number(text, key):
    # "... key=123 ..." or "... key 123 ..." -> 123
    import re

    m = re.search(r"%s[= ](\d+)" % re.escape(key), text)
    assert m, (key, text)
    return int(m.group(1))


def test_firmware_runs_on_the_board_and_answers_over_the_repl():
    if support.MICROPYTHON:
        support.skip(_E2E)
    import time

    b = _Board()
    try:
        out = _deploy(b.port)
        assert "board reset" in out, out
        time.sleep(1.5)  # main.py runs the system: ticks at the unix profile's 100 Hz
        # `resume` keeps the board's state: connecting sends Ctrl-C, main.py stops the
        # system (timer released), and the REPL can read what it did.
        text = b.ok("resume", "exec",
                    "import hx, helix_app; hx.status(); hx.ask('stats', 'get_stats');"
                    " print('running', helix_app.system.ticks.stats().running)")
        assert "helix_ipc on unix" in text and "stopped" in text, text
        assert "modules (3)" in text and "heartbeat" in text and " link " in text and "repl: link unix" in text, text
        assert "running False" in text, text  # Ctrl-C released the timer
        fired = _number(text, "fired")
        assert fired >= 50, text
        assert _number(text, "stats get_stats -> ticks") >= 50, text
        # restart in the background from the REPL, then stop again: more ticks arrive
        # while the REPL waits, as on a board (scheduled drains run while idle)
        text = b.ok("resume", "exec", "import hx; hx.start()")
        time.sleep(0.5)
        text = b.ok("resume", "exec",
                    "import hx, helix_app; hx.stop(); print('delivered', helix_app.system.ticks.stats().delivered)")
        assert _number(text, "delivered") > fired, text
        # a soft reset starts afresh: in the raw REPL main.py does not run
        text = b.ok("soft-reset", "exec", "import sys; print('app loaded', 'helix_app' in sys.modules)")
        assert "app loaded False" in text, text
    finally:
        b.close()


def test_mpremote_exec_after_deploy_says_the_system_is_not_running_and_resume_reaches_it():
    # `mpremote exec` soft-resets the board first and main.py does not run after a
    # soft reset: hx.status() must say so and what to do; `mpremote resume exec`
    # reaches the system main.py started.
    if support.MICROPYTHON:
        support.skip(_E2E)
    import time

    b = _Board()
    try:
        _deploy(b.port)
        time.sleep(1.0)  # main.py runs the system
        text = b.ok("resume", "exec", "import hx; hx.status()")
        assert "stopped after" in text and "modules (3)" in text and "NOT RUNNING" not in text, text
        assert "this run: fired " in text and "errors reported: bus 0 router 0 ticks 0" in text, text
        text = b.ok("exec", "import hx; hx.status()")  # no resume: a soft reset first
        assert "helix_ipc on unix" in text and ": NOT RUNNING" in text, text
        assert 'mpremote resume exec "import hx; hx.status()"' in text and "modules (0)" in text, text
        # hx.start() from that REPL starts it, and echoes no <System object at ...>
        text = b.ok("resume", "eval", "__import__('hx').start()")
        assert "running in the background at 100 Hz" in text and "System object" not in text, text
        assert text.strip().endswith("None"), text
        time.sleep(0.3)
        text = b.ok("resume", "exec", "import hx; hx.status(); hx.stop()")
        assert "running, up " in text and "(run 1)" in text and "modules (2)" in text, text
    finally:
        b.close()


def test_redeploy_after_a_firmware_change_copies_only_that_file():
    if support.MICROPYTHON:
        support.skip(_E2E)
    import os
    import shutil
    import tempfile
    from test_vboard import _root

    b = _Board()
    tmp = tempfile.mkdtemp(prefix="helix-fw-")
    try:
        fw = os.path.join(tmp, "firmware")
        shutil.copytree(os.path.join(_root(), "firmware"), fw)

        def deploy():
            return _deploy(b.port, "--firmware", fw, "--build-dir", os.path.join(tmp, "build"))

        deploy()
        with open(os.path.join(fw, "helix_examples.py"), "a") as f:
            f.write("\nREVISION = 2\n")
        out = deploy()
        changed = [line for line in out.splitlines() if line.startswith("deploy: changed")]
        assert changed == ["deploy: changed /helix_examples.py"], out
        text = b.ok("exec", "import helix_examples; print('revision', helix_examples.REVISION)")
        assert "revision 2" in text, text
    finally:
        b.close()
        shutil.rmtree(tmp, ignore_errors=True)


def test_deployed_firmware_serves_the_link_while_it_runs():
    # The real main.py serves the serial link on the REPL line: tools.link asks a module
    # and reads hx.status() while ticks go on, then mpremote still reaches the REPL.
    if support.MICROPYTHON:
        support.skip(_E2E)
    import time

    from test_link_board import _cli

    b = _Board()
    try:
        _deploy(b.port)
        time.sleep(1.0)  # main.py runs the system and the link
        rc, first, err = _cli(b.port, "ask", "stats", "get_stats", timeout=60)
        assert rc == 0, first + err
        ticks_first = _number(first, "ticks")
        time.sleep(0.5)
        rc, again, err = _cli(b.port, "ask", "stats", "get_stats", timeout=60)
        assert rc == 0, again + err
        assert _number(again, "ticks") > ticks_first, (first, again)  # it kept running
        rc, status, err = _cli(b.port, "status", timeout=60)
        assert rc == 0 and "running on asyncio" in status, status + err
        text = b.ok("resume", "exec", "import hx; hx.status()")  # Ctrl-C: the REPL is back
        assert "stopped after" in text and "repl: link unix" in text, text
    finally:
        b.close()
