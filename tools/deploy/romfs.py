# tools/deploy/romfs.py: `make deploy ROMFS=1` / `tools/deploy --romfs`, and
# `tools/deploy build --romfs` (host-side, CPython; see docs/romfs.md).
#
# A ROMFS deploy puts the modules into one read-only image in the board's ROMFS
# partition instead of files: MicroPython imports .mpy files from a ROMFS in place
# (bytecode and constants stay in flash), so importing the library costs about half
# the heap it costs from files. Needs firmware built with MICROPY_VFS_ROM and a ROMFS
# partition (not every stock build has one): it mounts the image at /rom and puts /rom
# and /rom/lib on sys.path.
#
# What goes where (the plan of deploy.plan(), rearranged by plan()):
#   lib/helix_ipc/**.py    -> image lib/helix_ipc/**.mpy   (/rom/lib/helix_ipc/...)
#   firmware/*.py          -> image *.mpy                  (/rom/helix_app.mpy, ...)
#   firmware/main.py, boot.py, other firmware files, boards/<BOARD>.py (the profile,
#   <lib_dir>/helix_board.py): files on the board's filesystem, as a files deploy.
# The .mpy files are compiled by deploy.build() (deploy's mpy-cross flags, the board's
# -march: mpremote's own `romfs build` compiles without -march and fails on our
# @micropython.native code), then written into the image with mpremote's VfsRomWriter.
# On the board, files a files deploy left for the modules now in the image are removed
# (the library's folder and the firmware's modules at /), so nothing shadows the image
# whatever order sys.path has.
#
# The image is replaced whole (`mpremote romfs deploy` writes it). The board side is
# thin: deploy.py runs board_rom_code() (is there a partition, how big) and then
# flash_args() through mpremote. The write to a real ROMFS partition is not run by the
# tests here (the unix port and the virtual board have no vfs.rom_ioctl); the query is,
# and a board without ROMFS is refused before anything is written or copied.
from pathlib import Path

from mpremote.romfs import VfsRomWriter

ROM = "/rom"  # where MicroPython mounts ROMFS partition 0 (and /rom, /rom/lib on sys.path)
FS_ONLY = ("main.py", "boot.py")  # the firmware's scripts the board runs from its filesystem
IMAGE = "helix.romfs"  # in the build folder; `mpremote romfs deploy` takes *.romfs / *.img as an image


class RomfsError(Exception):
    """A ROMFS problem (deploy.py reports it as its one-line DeployError)."""


def plan(entries, out):
    """deploy.plan()'s entries rearranged for a ROMFS deploy: (file entries, image
    entries, shadowed). Image entries build into out/rom/... (remote /rom/...), each
    compiled to .mpy; shadowed: the board paths where a files deploy put those modules
    (removed by the deploy when present)."""
    out = Path(out)
    files, rom, shadowed = [], [], []
    for src, dst, remote, shown in entries:
        where = Path(dst).relative_to(out)
        if where.parts[0] == "lib" and shown is not None:  # a library module: .mpy already
            rel = where.relative_to("lib").as_posix()
            rom.append((src, out / "rom" / "lib" / rel, ROM + "/lib/" + rel, shown))
            shadowed.append(remote)
        elif where.parts[0] == "root" and where.suffix == ".py" and where.name not in FS_ONLY:
            rel = where.relative_to("root")
            mpy = rel.with_suffix(".mpy").as_posix()
            rom.append((src, out / "rom" / mpy, ROM + "/" + mpy, rel.as_posix()))
            shadowed += [remote, "/" + mpy]  # the file a files deploy copied, or an .mpy made by hand
        else:
            files.append((src, dst, remote, shown))
    if not rom:
        raise RomfsError("nothing to put into a ROMFS image (no modules planned)")
    return files, rom, shadowed


def image(folder):
    """The ROMFS image (bytes) of everything under folder, written with mpremote's
    VfsRomWriter (names sorted, as `mpremote romfs build`)."""
    writer = VfsRomWriter()

    def add(d):
        for p in sorted(d.iterdir()):
            if p.is_dir():
                writer.opendir(p.name)
                add(p)
                writer.closedir()
            else:
                writer.mkfile(p.name, p.read_bytes())

    folder = Path(folder)
    if not folder.is_dir():
        raise RomfsError("%s is not a folder" % folder)
    add(folder)
    return writer.finalise()


def write_image(out):
    """Write out/IMAGE from out/rom (built by deploy.build()); returns its path."""
    data = image(Path(out) / "rom")
    path = Path(out) / IMAGE
    path.write_bytes(data)
    return path


# -- the board (thin: not run by the tests here, see the header) ----------------------
BOARD_ROM = (
    "import vfs\n"
    "_r = getattr(vfs, 'rom_ioctl', None)\n"
    "_n = _d = None\n"
    "if _r:\n"
    " _n = _r(1)\n"
    " _d = _r(2, %d) if 0 <= %d < _n else -1\n"
    " if not isinstance(_d, int):\n"
    "  _d = _d.ioctl(4, 0) * _d.ioctl(5, 0) if hasattr(_d, 'ioctl') else len(_d)\n"
    "print('HELIX-ROMFS', _n, _d)\n"
    "del _r, _n, _d\n"
)


def parse_board_rom(line):
    """(partitions, size of the wanted one) from the HELIX-ROMFS line's rest; None for
    a firmware without ROMFS, size < 0 for a partition it does not have."""
    n, size = line.split()
    if n == "None":
        return None, None
    return int(n), int(size)


def check_fits(info, partition, nbytes):
    """Raise RomfsError unless the board has ROMFS partition `partition` of at least
    nbytes."""
    n, size = info
    if n is None:
        raise RomfsError("the board's firmware has no ROMFS (no vfs.rom_ioctl: built without MICROPY_VFS_ROM): "
                         "flash a build with a ROMFS partition, or deploy without --romfs / ROMFS=1")
    if size is None or size < 0:
        raise RomfsError("the board has no ROMFS partition %d (its firmware has %d): use --partition, or a firmware "
                         "with one" % (partition, n))
    if nbytes > size:
        raise RomfsError("the image is %d B, ROMFS partition %d holds %d B" % (nbytes, partition, size))


def board_rom_code(partition):
    """What `mpremote exec` runs on the board to ask for its ROMFS (reads only); it
    prints the HELIX-ROMFS line parse_board_rom() reads."""
    return BOARD_ROM % (partition, partition)


def flash_args(path, partition):
    """mpremote's arguments that write the image (`romfs -p N deploy IMAGE`: the whole
    partition is rewritten; the board's /rom is unmounted until its next reset)."""
    return ["resume", "romfs", "-p", str(partition), "deploy", str(path)]
