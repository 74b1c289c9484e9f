# vboard_main.py: entry script of the virtual board's device process (MicroPython unix port).
#
# Run by tools/vboard/host.py as
#   micropython vboard_main.py <fs_root> <hostlib_dir> <ctl_fd> <mode> <cause>
# with a pseudo-terminal as stdin/stdout. Everything lives in _vboard.py; this script's
# own globals become the board's __main__ namespace (the REPL's globals, where boot.py
# and main.py run), as on a real board.
import _vboard

_vboard.main(globals())
