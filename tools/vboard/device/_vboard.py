# _vboard.py: the device side of the virtual board (runs under the MicroPython unix port).
#
# It plays the part of a port's main loop and of MicroPython's shared/runtime/pyexec.c:
# boot.py, then main.py (friendly mode only) from the board's filesystem, then the
# friendly REPL or the raw REPL (with raw-paste mode), on the serial line that
# tools/vboard/host.py gives it. The REPL code is single-threaded; user code may start
# threads (hostmachine timers).
#
# Contract with the host:
# - stdin/stdout: a pseudo-terminal in raw mode with OPOST|ONLCR (a "\n" goes out as
#   "\r\n", as a board's cooked stdout does) and NOFLSH. Protocol text here is therefore
#   written with "\n".
# - Ctrl-C: while code runs (boot.py, main.py, REPL input) ISIG is on, so a received
#   \x03 becomes SIGINT, which the unix port raises as KeyboardInterrupt; at the prompts
#   ISIG is off and \x03 is an ordinary byte. pyexec.c enables the interrupt character
#   only around execution in the same way.
# - resets: the device writes one record to the control pipe (fd in argv) and waits to
#   be killed: b"SR" / b"SF" soft reset into the raw / friendly REPL, b"H" hard reset
#   (machine.reset()). The host starts a new process, so every reset begins with fresh
#   module state, threads and timers included.
# - filesystem: the board's folder is mounted at "/" (vfs.VfsPosix(root)), so open(),
#   os.* and import all see the board's files (`os` is _vboard_os.py: the unix port's os
#   with sizes in ilistdir and a working rename); sys.path is ['', '.frozen', '/lib'] as on
#   rp2/esp32. tools/hostmachine/machine.py is imported before the mount and stays in
#   sys.modules as the board's built-in `machine`. Not a security sandbox: "/.." reaches
#   the host.
import sys
import io
import os
import time

try:
    import termios
except ImportError:
    termios = None
import select
import vfs
import _vboard_os

_CTRL_A = 1
_CTRL_B = 2
_CTRL_C = 3
_CTRL_D = 4
_CTRL_E = 5
_SOFT = "soft"
_ISIG = 0o1  # termios c_lflag bit on Linux (the unix port's termios has no constant for it)
_LFLAG = 3
_PASTE_WINDOW = 128  # raw-paste flow-control window: half of pyexec.c's 256-byte buffer

_stdin = sys.stdin.buffer
_stdout = sys.stdout.buffer
_ctl = [None]  # control pipe to the host
# Inputs executed per REPL kind since this (re)start: tests read them to see which
# protocol a client used (e.g. that mpremote went through raw-paste mode).
stats = {"raw": 0, "paste": 0, "friendly": 0}
_tty = [termios is not None]
# Waiting for input polls in short slices: between them the VM runs callbacks queued
# with micropython.schedule, as a board's REPL does while it waits for a key (so timer
# ticks keep being delivered while the user sits at the prompt).
_poller = select.poll()
_poller.register(_stdin, select.POLLIN)
_IDLE_SLICE_MS = 5


def _w(s):
    sys.stdout.write(s)


def _wb(b):
    _stdout.write(b)


_typeahead = bytearray()  # bytes read early by _ctrl_c_waiting(), served first


def _ctrl_c_waiting():
    """True if a Ctrl-C already sits in the input (it arrived while ISIG was off, e.g.
    during the ~40 ms of a reset, when a board would have taken it as an interrupt).
    Input up to it is discarded, what follows it is kept for _getc()."""
    found = False
    while _poller.poll(0):
        b = _stdin.read(1)
        if not b:
            break
        if b[0] == _CTRL_C:
            found = True
            _typeahead[:] = b""
        else:
            _typeahead.extend(b)
    return found


def _getc():
    """Next byte from the serial line. A KeyboardInterrupt that lands here (a late
    Ctrl-C) counts as the key itself. End of input means the host is gone."""
    if _typeahead:
        c = _typeahead[0]
        _typeahead[:] = _typeahead[1:]
        return c
    try:
        while not _poller.poll(_IDLE_SLICE_MS):
            pass
        b = _stdin.read(1)
    except KeyboardInterrupt:
        return _CTRL_C
    except OSError:
        b = b""
    if not b:
        raise SystemExit(0)
    return b[0]


def _isig(on):
    if not _tty[0]:
        return
    try:
        a = termios.tcgetattr(0)
        if on:
            a[_LFLAG] |= _ISIG
        else:
            a[_LFLAG] &= ~_ISIG
        termios.tcsetattr(0, termios.TCSANOW, a)
    except OSError:
        _tty[0] = False  # not a terminal (run by hand): no Ctrl-C as a signal


def _settle():
    # A few backward jumps: the VM raises a KeyboardInterrupt still pending from a
    # SIGINT delivered just before ISIG went off, here rather than later at a prompt.
    i = 0
    while i < 3:
        i += 1


def _run(src, g, kind, name):
    try:
        exec(compile(src, name, kind), g)
    except BaseException as e:  # noqa: B036 - reported to the REPL like pyexec does
        return e
    return None


def _execute(src, g, kind, name="<stdin>", ack=None):
    """Compile and run src in g with Ctrl-C enabled; returns the exception or None.
    ack (the raw REPL's "OK", raw paste's end-of-data \x04) is written once Ctrl-C is
    already enabled, so a client that interrupts as soon as it sees it is never lost.
    A Ctrl-C that arrives after the code finished becomes its KeyboardInterrupt, as
    pyexec's mp_handle_pending() after execution does."""
    started = False
    exc = None
    box = [ack]
    while True:
        try:
            if not started:
                started = True
                _isig(True)
                if box[0] is not None:
                    _w(box[0])  # no pending-exception check between this and the next line
                    box[0] = None
                if _ctrl_c_waiting():
                    raise KeyboardInterrupt
                exc = _run(src, g, kind, name)
            _isig(False)
            _settle()
            break
        except KeyboardInterrupt as e:
            exc = e
    if box[0] is not None:
        _w(box[0])  # interrupted before the acknowledgement went out
    return exc


_OWN_FRAMES = 'File "%s"' % __file__


def _print_exception(exc):
    # As a board prints it: without the frames of this file (exec() adds one).
    buf = io.StringIO()
    sys.print_exception(exc, buf)
    lines = buf.getvalue().split("\n")
    _w("\n".join(line for line in lines if _OWN_FRAMES not in line))


def _report(exc, eof):
    """Print the result of an execution; True when it asks for a soft reset (SystemExit)."""
    if eof:
        _wb(b"\x04")
    forced = False
    if exc is not None:
        if isinstance(exc, SystemExit):
            forced = True
        else:
            _print_exception(exc)
    if eof:
        _wb(b"\x04")
    return forced


# -- raw REPL ----------------------------------------------------------------------
def _raw_paste(cmd, g):
    if cmd != 0x41:  # 'A': the only raw-paste command
        _wb(b"R\x00")
        return False
    _wb(b"R\x01" + bytes((_PASTE_WINDOW & 0xFF, _PASTE_WINDOW >> 8)) + b"\x01")
    src = bytearray()
    remain = _PASTE_WINDOW
    while True:
        c = _getc()
        if c == _CTRL_C or c == _CTRL_D:
            break
        src.append(c)
        remain -= 1
        if remain == 0:
            _wb(b"\x01")  # another window of input may come
            remain = _PASTE_WINDOW
    if c == _CTRL_C:
        _wb(b"\x04")  # end of input acknowledged
        exc = KeyboardInterrupt()
    else:
        stats["paste"] += 1
        exc = _execute(bytes(src), g, "exec", ack="\x04")
    return _report(exc, True)


def _raw_repl(g):
    _w("raw REPL; CTRL-B to exit\n>")
    line = bytearray()
    while True:
        c = _getc()
        if c == _CTRL_A:
            if len(line) == 2 and line[0] == _CTRL_E:
                if _raw_paste(line[1], g):
                    return _SOFT
                line = bytearray()
                _w(">")
            else:
                line = bytearray()
                _w("raw REPL; CTRL-B to exit\n>")
        elif c == _CTRL_B:
            _w("\n")
            return "F"
        elif c == _CTRL_C:
            line = bytearray()
        elif c != _CTRL_D:
            line.append(c)
        else:
            if not line:
                _w("OK\n")
                return _SOFT
            stats["raw"] += 1
            exc = _execute(bytes(line), g, "exec", ack="OK")
            line = bytearray()
            if _report(exc, True):
                return _SOFT
            _w(">")


# -- friendly REPL -------------------------------------------------------------------
# As shared/readline/readline.c (with MICROPY_REPL_AUTO_INDENT and MICROPY_REPL_EMACS_KEYS,
# as rp2 and esp32 have them) and pyexec_friendly_repl(): one line buffer holds the whole
# statement; each "... " line is read into its end.
# - Auto-indent: a new line starts with the previous line's indentation, one level more
#   after a line ending in ':'; Backspace over indentation removes 4 spaces; a space or
#   Tab typed right after an auto-indent turns auto-indent off for the statement (a
#   space also removes 3 of the 4 spaces): pasted, already indented code keeps its own.
#   A statement that starts with a compound keyword goes on until an empty line:
#   Backspace to the start of the line and Enter, or Enter on an indented empty line
#   twice (the second one gets no indent), then Enter.
# - Editing: Left/Right, Home/End (also Ctrl-A/Ctrl-E on a non-empty line), Delete,
#   Ctrl-B/F/D/K/U/N/P, Up/Down through the last 8 lines entered; VT100 output as there.
# Not modelled: Tab completion (Tab after whitespace inserts 4 spaces, as there;
# elsewhere it is ignored) and word moves. As there, only 32..126 are taken as text.
_AI_ENABLED = 1
_AI_JUST_ADDED = 2
_COMPOUND = (b"if", b"while", b"for", b"try", b"with", b"def", b"class", b"async")
_HISTORY = 8  # MICROPY_READLINE_HISTORY_SIZE
_history = []  # newest first, as readline_hist[]


def _starts_with_word(src, word):
    n = len(word)
    if src[:n] != word:
        return False
    if len(src) == n:
        return True
    c = src[n]
    return not (c == 95 or 48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122)  # not an identifier char


def _continue_with_input(src):
    """py/repl.c mp_repl_continue_with_input(), over the statement's bytes."""
    if not src:
        return False
    compound = src[0] == 64  # '@'
    for word in _COMPOUND:
        compound = compound or _starts_with_word(src, word)
    parens = 0
    quote = 0  # 0 none, 1 ', 2 ", 3 ''', 4 """
    i = 0
    n = len(src)
    while i < n:
        c = src[i]
        if c == 39 or c == 34:  # ' or "
            one, three = (1, 3) if c == 39 else (2, 4)
            if (quote == 0 or quote == three) and src[i + 1:i + 3] == bytes((c, c)):
                i += 2
                quote = three - quote
            elif quote == 0 or quote == one:
                quote = one - quote
        elif c == 92 and i + 1 < n and src[i + 1] in (39, 34, 92):  # backslash before a quote or backslash
            if quote:
                i += 1
        elif quote == 0:
            if c in (40, 91, 123):  # ( [ {
                parens += 1
            elif c in (41, 93, 125):
                parens -= 1
        i += 1
    if quote >= 3:
        return True  # unmatched triple quote
    if parens > 0 and quote == 0:
        return True
    if src[-1] == 92:  # a trailing backslash
        return True
    return compound and src[-1] != 10  # a compound statement goes on until an empty line


def _back(n):
    # mp_hal_move_cursor_back()
    if n > 0:
        _w("\b" * n if n <= 4 else "\x1b[%dD" % n)


class _Readline:
    """readline_t: the line being edited (a bytearray shared by a statement's lines),
    where this line starts in it, the cursor, escape sequence state, auto-indent."""

    def __init__(self):
        self.auto_indent = 0

    def read(self, line, prompt):
        """readline(): read one line into `line` from its current end; returns 0 for
        Enter, or the control key (Ctrl-C always; Ctrl-A..E on an empty line)."""
        self.line = line
        self.orig = self.cursor = len(line)
        self.esc = 0
        self.esc_digit = 0
        self.hist_cur = -1
        _w(prompt)
        if not line:
            self.auto_indent = _AI_ENABLED  # a new statement starts with auto-indent on
        self._auto_indent()
        while True:
            r = self._char(_getc())
            if r >= 0:
                return r

    def _auto_indent(self):
        # readline_auto_indent(): indent the new (empty) last line.
        line = self.line
        n = len(line)
        if not self.auto_indent & _AI_ENABLED or n <= 1 or line[-1] != 10:
            return
        i = n - 1
        while i > 0 and line[i - 1] != 10:  # i: start of the previous line
            i -= 1
        j = i
        while j < n and line[j] == 32:  # j: its first non-space
            j += 1
        if i > 0 and j + 1 == n:
            # the previous line is all spaces: no indent if the one before is too
            k = i - 1
            while k > 0:
                if line[k - 1] == 10:
                    return
                if line[k - 1] != 32:
                    break
                k -= 1
        levels = (j - i) // 4
        if line[n - 2] == 58:  # ':'
            levels += 1
        for _ in range(levels):
            line.extend(b"    ")
            _w("    ")
            self.cursor += 4
            self.auto_indent |= _AI_JUST_ADDED

    def _history_to(self, cur):
        line = self.line
        self.hist_cur = cur
        line[self.orig:] = _history[cur] if cur >= 0 else b""
        return self.cursor - self.orig, len(line) - self.orig

    def _char(self, c):
        # readline_process_char(): -1 while the line goes on.
        line = self.line
        last_len = len(line)
        back = 0
        redraw = False
        fwd = 0
        esc = self.esc
        self.esc = 0
        if esc == 0:
            if _CTRL_A <= c <= _CTRL_E and len(line) == self.orig:
                return c
            if c == _CTRL_C:
                return c
            if c == 13:
                _w("\n")
                entered = bytes(line[self.orig:])
                if entered and (not _history or _history[0] != entered):
                    _history.insert(0, entered)
                    del _history[_HISTORY:]
                return 0
            if c == _CTRL_A:
                back = self.cursor - self.orig  # home
            elif c == _CTRL_E:
                fwd = len(line) - self.cursor  # end
            elif c == 2:  # Ctrl-B: left
                back = 1 if self.cursor > self.orig else 0
            elif c == 6:  # Ctrl-F: right
                fwd = 1 if self.cursor < len(line) else 0
            elif c == _CTRL_D:  # delete at the cursor
                if self.cursor < len(line):
                    line[self.cursor:self.cursor + 1] = b""
                    redraw = True
            elif c == 11:  # Ctrl-K: kill to the end
                line[self.cursor:] = b""
                redraw = True
            elif c == 21:  # Ctrl-U: kill to the start
                back = self.cursor - self.orig
                line[self.orig:self.cursor] = b""
                redraw = True
            elif c == 14 or c == 16:  # Ctrl-N / Ctrl-P: history
                return self._char_history(c == 16, last_len)
            elif c == 27:
                self.esc = 1
            elif c == 8 or c == 127:
                if self.cursor > self.orig:
                    spaces = 0  # only spaces before the cursor: remove a level (4)
                    for b in line[self.orig:self.cursor]:
                        if b != 32:
                            spaces = 0
                            break
                        spaces += 1
                    back = 4 if spaces >= 4 else 1
                    line[self.cursor - back:self.cursor] = b""
                    redraw = True
            elif (self.auto_indent & _AI_JUST_ADDED) and (c == 9 or c == 32):
                self.auto_indent = 0  # typed indentation: auto-indent off for this statement
                if c == 32:
                    back = 3
                    line[len(line) - 3:] = b""
            elif c == 9:
                if line and line[self.cursor - 1] in (32, 9, 10, 13):
                    line[self.cursor:self.cursor] = b"    "
                    redraw = True
                    fwd = 4
            elif 32 <= c <= 126:
                line[self.cursor:self.cursor] = bytes((c,))
                redraw = True
                fwd = 1
        elif esc == 1:  # after ESC
            self.esc = 2 if c == 0x5B else 4 if c == 0x4F else 0
        elif esc == 2:  # ESC [
            if 0x30 <= c <= 0x39:
                self.esc = 3
                self.esc_digit = c
            elif c == 0x41 or c == 0x42:  # Up / Down
                return self._char_history(c == 0x41, last_len)
            elif c == 0x43:  # Right
                fwd = 1 if self.cursor < len(line) else 0
            elif c == 0x44:  # Left
                back = 1 if self.cursor > self.orig else 0
            elif c == 0x48:  # Home
                back = self.cursor - self.orig
            elif c == 0x46:  # End
                fwd = len(line) - self.cursor
        elif esc == 3:  # ESC [ digit
            if c == 0x7E:
                d = self.esc_digit
                if d == 0x31 or d == 0x37:
                    back = self.cursor - self.orig
                elif d == 0x34 or d == 0x38:
                    fwd = len(line) - self.cursor
                elif d == 0x33 and self.cursor < len(line):
                    line[self.cursor:self.cursor + 1] = b""
                    redraw = True
        elif esc == 4:  # ESC O
            if c == 0x48:
                back = self.cursor - self.orig
            elif c == 0x46:
                fwd = len(line) - self.cursor
        self._redraw(last_len, back, redraw, fwd)
        return -1

    def _char_history(self, older, last_len):
        if older:
            if self.hist_cur + 1 >= len(_history):
                self._redraw(last_len, 0, False, 0)
                return -1
            back, fwd = self._history_to(self.hist_cur + 1)
        else:
            if self.hist_cur < 0:
                self._redraw(last_len, 0, False, 0)
                return -1
            back, fwd = self._history_to(self.hist_cur - 1)
        self._redraw(last_len, back, True, fwd)
        return -1

    def _redraw(self, last_len, back, redraw, fwd):
        # readline.c's redraw: cursor back, erase and draw from the cursor, cursor on.
        line = self.line
        if back > 0:
            _back(back)
            self.cursor -= back
        if redraw:
            if len(line) < last_len:
                _w("\x1b[K")
            _wb(bytes(line[self.cursor:]))
            _back(len(line) - (self.cursor + fwd))
            self.cursor += fwd
        elif fwd > 0:
            _wb(bytes(line[self.cursor:self.cursor + fwd]))
            self.cursor += fwd
        self.auto_indent &= ~_AI_JUST_ADDED


_rl = _Readline()


def _paste_mode():
    _w("\npaste mode; Ctrl-C to cancel, Ctrl-D to finish\n=== ")
    buf = bytearray()
    while True:
        c = _getc()
        if c == _CTRL_C:
            _w("\n")
            return None
        if c == _CTRL_D:
            _w("\n")
            return bytes(buf)
        if c == 13:
            buf.append(10)
            _w("\n=== ")
        else:
            buf.append(c)
            _wb(bytes((c,)))


def _banner():
    v = sys.implementation.version
    built = sys.version.split(" on ")[-1]
    _w("MicroPython v%d.%d.%d%s on %s; %s (helix virtual board)\nType \"help()\" for more information.\n"
       % (v[0], v[1], v[2], "-" + v[3] if len(v) > 3 and v[3] else "", built, sys.implementation._machine))


def _friendly_repl(g):
    _banner()
    while True:
        line = bytearray()
        ctrl = _rl.read(line, ">>> ")
        if ctrl == _CTRL_A:
            _w("\n")
            return "R"
        if ctrl == _CTRL_B:
            _w("\n")
            _banner()
            continue
        if ctrl == _CTRL_C:
            _w("\n")
            continue
        if ctrl == _CTRL_D:
            _w("\n")
            return _SOFT
        if ctrl == _CTRL_E:
            src = _paste_mode()
            kind = "exec"
        elif not line:
            continue
        else:
            kind = "single"
            while _continue_with_input(line):
                line.append(10)
                ctrl = _rl.read(line, "... ")
                if ctrl == _CTRL_C:  # cancel everything
                    _w("\n")
                    line = None
                    break
                if ctrl == _CTRL_D:  # stop entering the compound statement: run it
                    break
            if line is None:
                continue
            try:
                src = str(line, "utf-8") + "\n"
            except UnicodeError:
                src = None  # undecodable input: nothing to run
        if not src or not src.strip():
            continue
        stats["friendly"] += 1
        if _report(_execute(src, g, kind), False):
            return _SOFT


# -- resets and start-up -------------------------------------------------------------
def _request(record):
    """Ask the host for a reset and wait to be replaced by a new process."""
    _ctl[0].write(record)
    while True:
        time.sleep(1)


def hard_reset():
    """machine.reset() of the virtual board: the host starts a fresh device process,
    which runs boot.py and main.py like a board after power-on."""
    _request(b"H")


def soft_reset():
    """machine.soft_reset(): raises SystemExit, which the REPL turns into a soft reset."""
    raise SystemExit


def _boot_file(path, g):
    """pyexec_file_if_exists(): run path from the board's root. Returns (soft reset
    asked, ran without an exception); a missing file counts as a clean run."""
    try:
        with open(path, "rb") as f:
            src = f.read()
    except OSError:
        return False, True
    g["__file__"] = path
    exc = _execute(src, g, "exec", path)
    return _report(exc, False), exc is None


def _setup(argv):
    root, hostlib, ctl_fd, mode = argv[1], argv[2], argv[3], argv[4]
    _ctl[0] = open("/dev/fd/" + ctl_fd, "wb")
    if hostlib:
        sys.path.insert(0, hostlib)
        try:
            import machine

            machine.reset = hard_reset
            machine.soft_reset = soft_reset
        except (ImportError, AttributeError) as e:  # no hostmachine: the read-only built-in
            _w("vboard: no host machine module (%r)\n" % (e,))
        sys.path.pop(0)
    vfs.umount("/")
    vfs.mount(vfs.VfsPosix(root), "/")
    sys.modules["os"] = _vboard_os  # see _vboard_os.py
    os.chdir("/")
    sys.path.clear()
    sys.path.extend(("", ".frozen", "/lib"))
    sys.argv.clear()
    return mode


def main(g):
    """Run the board until a reset: boot.py, main.py, then the REPLs."""
    mode = _setup(sys.argv)
    for k in list(g):
        if k != "__name__":
            del g[k]
    _isig(False)
    forced, ok = _boot_file("boot.py", g)
    if not forced and ok and mode == "F":  # as the ports' main.c: no main.py after a failed boot.py
        forced, ok = _boot_file("main.py", g)
    while not forced:
        try:
            r = _raw_repl(g) if mode == "R" else _friendly_repl(g)
        except KeyboardInterrupt:
            continue  # a stray late Ctrl-C in the REPL itself: start the prompt again
        if r == _SOFT:
            break
        mode = r
    _w("MPY: soft reboot\n")
    _request(b"S" + mode.encode())
