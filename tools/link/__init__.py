# tools.link: the host side of helix_ipc's serial link (CPython): HostLink (host.py),
# the CLI (cli.py, `python -m tools.link`), a fault-injecting proxy pty (faultpty.py)
# and the demo (demo.py).
