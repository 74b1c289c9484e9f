# tools/cluster/mplib.py: install the pinned micropython-lib packages of
# requirements/micropython-lib.txt into .venv/mplib for the unix port (CPython).
#
#   python tools/cluster/mplib.py [DEST]
#
# Each line pins a PyPI sdist by URL and sha256; a file whose hash differs is refused.
# Only the package's .py files are unpacked (no setup code runs). Idempotent: a package
# whose stamp file matches its pin is skipped.
import hashlib
import io
import os
import sys
import tarfile
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PINS = os.path.join(ROOT, "requirements", "micropython-lib.txt")


def pins():
    with open(PINS) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                name, sha, url = line.split()
                yield name, sha, url


def install(dest):
    os.makedirs(dest, exist_ok=True)
    for name, sha, url in pins():
        stamp = os.path.join(dest, "." + name + ".installed")
        if os.path.exists(stamp) and open(stamp).read() == sha:
            continue
        with urllib.request.urlopen(url, timeout=60) as r:
            data = r.read()
        got = hashlib.sha256(data).hexdigest()
        if got != sha:
            raise SystemExit("mplib: %s: sha256 %s, pinned %s" % (name, got, sha))
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for m in tar.getmembers():
                parts = m.name.split("/")[1:]
                if not m.isfile() or not parts or not parts[-1].endswith(".py") or parts[-1] == "setup.py":
                    continue
                if any(p in ("", "..") for p in parts):
                    raise SystemExit("mplib: %s: bad path %r" % (name, m.name))
                out = os.path.join(dest, *parts)
                os.makedirs(os.path.dirname(out), exist_ok=True)
                with open(out, "wb") as f:
                    f.write(tar.extractfile(m).read())
        with open(stamp, "w") as f:
            f.write(sha)
        print("mplib: installed %s into %s" % (name, dest))


if __name__ == "__main__":
    install(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".venv", "mplib"))
