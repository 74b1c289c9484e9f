# tools/bench/romfs_bench.py: the ROMFS rows of `make bench` (SECTIONS=romfs; host-side,
# CPython): import heap from a ROMFS image (tools/deploy/romfs.py, docs/romfs.md) vs
# from .mpy files, on the 64-bit unix port, both modes (as is, and board mode:
# sys.exc_info hidden). Each pair is measured in the same run by the same code:
# - link board side: link_bench.heap_rows() itself (its steps, baseline and name
#   accounting: qstr pool pre-grown, each new name charged its pool entry), once as it
#   is (.mpy files from build/mpy/x64) and once with the same folder of .mpy files
#   (helix_ipc/ and helix_link.mpy) as a ROMFS image mounted at /rom and put first on
#   sys.path (its DEVICE script gets the mount in front, its libdir is "/rom");
# - the whole core: footprint.measure_heap()'s import:all and use:all, through a wrapper
#   script that mounts the image (or not) and then runs footprint_device.py, for both
#   sides alike.
# The unix port mounts the image from a bytes object read before the baseline (a board
# maps its flash partition): imports from it keep bytecode and constants in place.
# Native code (@micropython.native) goes to executable memory outside the GC heap on the
# unix port either way; `bytes` adds it (as footprint.py does) and `native` says how
# much; where a board keeps it for a ROMFS import is not measured here.
#
#   python tools/bench/romfs_bench.py   prints the rows as JSON
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tools" / "deploy"))
OUT = ROOT / "build" / "romfs_bench"

MOUNT = "import vfs\nvfs.mount(vfs.VfsRom(open(%r, 'rb').read()), '/rom')\n"

WRAPPER = '''# made by tools/bench/romfs_bench.py: footprint_device.py, with a ROMFS image mounted first
import sys
%s_dev = %r
sys.argv[0] = _dev
exec(open(_dev).read(), {"__name__": "__main__", "__file__": _dev})
'''


def _image(paths, name):
    """A ROMFS image (OUT/name) holding these files and folders at its root, nothing else
    (the .mpy folder also holds what other sections compiled)."""
    import shutil

    import romfs

    stage = OUT / (name + ".d")
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    for p in paths:
        (shutil.copytree if p.is_dir() else shutil.copyfile)(p, stage / p.name)
    path = OUT / name
    path.write_bytes(romfs.image(stage))
    return path


class _Patched:
    """Module attributes set for a while (the measuring code reused as it is)."""

    def __init__(self, module, **values):
        self.module, self.values, self.old = module, values, {}

    def __enter__(self):
        for k, v in self.values.items():
            self.old[k] = getattr(self.module, k)
            setattr(self.module, k, v)

    def __exit__(self, *exc):
        for k, v in self.old.items():
            setattr(self.module, k, v)


def link_rows():
    import link_bench

    libdir, native, mpy = link_bench.compile_board_side()
    files = link_bench.heap_rows()
    img = _image([Path(libdir) / "helix_ipc", Path(libdir) / "helix_link.mpy"], "link.romfs")  # as libdir holds them
    with _Patched(link_bench, DEVICE=MOUNT % str(img) + link_bench.DEVICE,
                  compile_board_side=lambda: ("/rom", native, mpy)):
        rom = link_bench.heap_rows()
    return _pairs(files, rom, {"image_bytes": img.stat().st_size})


def core_rows():
    import footprint

    libdir, _, native = footprint.compile_lib(footprint.HEAP_ARCH)
    img = _image([Path(libdir) / "helix_ipc"], "core.romfs")
    rows = {}
    for side, mount, where in (("files", "", str(libdir)), ("romfs", MOUNT % str(img), "/rom")):
        wrap = OUT / side
        wrap.mkdir(parents=True, exist_ok=True)
        (wrap / "footprint_device.py").write_text(WRAPPER % (mount, str(HERE / "footprint_device.py")))
        with _Patched(footprint, HERE=wrap, MEASURES=("import:all", "use:all")):
            rows[side] = footprint.measure_heap(where, native, False) + footprint.measure_heap(where, native, True)
    return _pairs(rows["files"], rows["romfs"], {"image_bytes": img.stat().st_size})


def _pairs(files, rom, extra):
    """One row per (name, mode): bytes from files and from the image, and the saving."""
    rom_by = {(r["name"], r["mode"]): r for r in rom}
    out = []
    for f in files:
        if "bytes" not in f or f["name"].endswith("status request") or f["name"].endswith("line served"):
            if "skipped" in f:
                out.append({"name": "romfs vs files: " + f["name"], "mode": f["mode"], "skipped": f["skipped"]})
            continue
        r = rom_by.get((f["name"], f["mode"]), {})
        row = {"name": "romfs vs files: " + f["name"], "mode": f["mode"]}
        if "bytes" not in r:
            row["skipped"] = "romfs: %s" % r.get("skipped", "no row")
        else:
            row.update({"files_bytes": f["bytes"], "romfs_bytes": r["bytes"], "saved_bytes": f["bytes"] - r["bytes"],
                        "ratio": round(r["bytes"] / f["bytes"], 3), "native": f.get("native", 0)})
            for k in ("names", "new_names", "loaded"):
                if k in r:
                    row["romfs_" + k] = r[k]
            row.update(extra)
        out.append(row)
    return out


def main():
    return link_rows() + core_rows()


if __name__ == "__main__":
    print(json.dumps(main(), indent=1))
