# probe.py: run on the board by tools/deploy (after `exec "_helix_deploy = {...}"`).
# Reports, on one line starting with HELIX-PROBE, the board's .mpy ABI, the sha256 of
# each file deployment manages, staged leftovers, and every file under the managed
# folders (so stale modules can be removed). Reads only; cleans up its own globals.
def _helix_probe(args):
    import sys
    import os

    try:
        import hashlib
        from binascii import hexlify
    except ImportError:
        hashlib = None

    def digest(path):
        # sha256 hex of a file; "" when it exists but cannot be hashed; None when absent
        try:
            f = open(path, "rb")
        except OSError:
            return None
        if hashlib is None:
            f.close()
            return ""
        h = hashlib.sha256()
        buf = bytearray(512)
        mv = memoryview(buf)
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(mv[:n])
        f.close()
        return hexlify(h.digest()).decode()

    def kind(path):
        try:
            return "d" if os.stat(path)[0] & 0x4000 else "f"
        except OSError:
            return ""

    def walk(d, out):
        try:
            entries = list(os.ilistdir(d))
        except OSError:
            return
        for e in entries:
            p = d + "/" + e[0]
            if e[1] == 0x4000:
                walk(p, out)
            else:
                out.append(p)

    files = {}
    staged = []
    for p in args["paths"]:
        files[p] = digest(p)
        if kind(p + ".new") == "f":
            staged.append(p + ".new")
    tree = []
    for d in args["trees"]:
        walk(d, tree)
    impl = sys.implementation
    print("HELIX-PROBE", repr({
        "mpy": getattr(impl, "_mpy", None),
        "version": ".".join(str(v) for v in impl.version[:3]),
        "platform": sys.platform,
        "machine": getattr(impl, "_machine", ""),
        "hashlib": hashlib is not None,
        "files": files,
        "staged": staged,
        "tree": tree,
        "dirs": {d: kind(d) for d in args["dirs"]},
    }))


_helix_probe(_helix_deploy)  # noqa: F821 - set by the exec before this file
del _helix_probe, _helix_deploy  # noqa: F821
