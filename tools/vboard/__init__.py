# tools.vboard: a virtual MicroPython board on this machine (see host.py and device/).
