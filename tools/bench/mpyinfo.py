# tools/bench/mpyinfo.py: how many bytes of a compiled .mpy file are machine code
# (@micropython.native functions) and how many are bytecode. Host-side (CPython) only.
#
# Why: on the unix port, native code loaded from .mpy goes to executable memory outside
# the GC heap (measured: a module with 13.6 KB of x64 native code adds 288 B to
# gc.mem_alloc()), while on rp2/esp32 the same code is allocated on the GC heap. So the
# import rows add the native bytes that gc.mem_alloc() cannot see.
#
# Walks the .mpy v6 layout (header, qstr table, object table, then the raw-code tree:
# kind/length varint, the function's data, for native code its prelude offset, then its
# children). The walk must end exactly at the end of the file; if it does not (an .mpy
# layout this walker does not know) it raises ValueError rather than guess.

_KINDS = ("bytecode", "native", "viper", "asm")
# Object table entry types (persistent object codes of .mpy v6).
_OBJ_NO_DATA = (0, 1, 2, 3, 4)  # fun_table, None, False, True, Ellipsis
_OBJ_STR, _OBJ_BYTES, _OBJ_TUPLE = 5, 6, 10


class _Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def byte(self):
        b = self.data[self.pos]
        self.pos += 1
        return b

    def uint(self):
        n = 0
        while True:
            b = self.byte()
            n = (n << 7) | (b & 0x7F)
            if not b & 0x80:
                return n

    def skip(self, n):
        if self.pos + n > len(self.data):
            raise ValueError("truncated")
        self.pos += n


def _obj(r):
    kind = r.byte()
    if kind in _OBJ_NO_DATA:
        return
    n = r.uint()
    if kind == _OBJ_TUPLE:
        for _ in range(n):
            _obj(r)
        return
    r.skip(n + (1 if kind in (_OBJ_STR, _OBJ_BYTES) else 0))


def _raw_code(r, sizes):
    kind_len = r.uint()
    kind = _KINDS[kind_len & 3]
    has_children = kind_len & 4
    n = kind_len >> 3
    r.skip(n)
    sizes[kind] += n
    sizes["functions_" + kind] += 1
    if kind == "native":
        r.uint()  # prelude offset
    elif kind in ("viper", "asm"):
        raise ValueError("viper/asm code in .mpy: not handled")
    if has_children:
        for _ in range(r.uint()):
            _raw_code(r, sizes)


def sizes(path):
    """{"bytecode": B, "native": B, "functions_bytecode": n, "functions_native": n,
    "qstrs": n, "new_qstr_bytes": B, "constants": n, ...} for one .mpy file
    ("functions_bytecode" counts the module body and each class body too)."""
    with open(path, "rb") as f:
        data = f.read()
    r = _Reader(data)
    if r.byte() != ord("M") or r.byte() != 6:
        raise ValueError("%s: not an .mpy v6 file" % path)
    flags = r.byte()
    r.byte()  # small-int bits
    arch = flags >> 2
    if arch >= 11:  # rv32imc and later carry architecture flags first
        r.uint()
    out = {k: 0 for k in _KINDS}
    out.update({"functions_" + k: 0 for k in _KINDS})
    n_qstr = r.uint()
    n_obj = r.uint()
    out["qstrs"] = n_qstr  # names the module uses (its qstr table)
    out["new_qstr_bytes"] = 0  # bytes of those not built into the firmware
    for _ in range(n_qstr):
        n = r.uint()
        if not n & 1:
            out["new_qstr_bytes"] += n >> 1
            r.skip((n >> 1) + 1)
    out["constants"] = n_obj
    for _ in range(n_obj):
        _obj(r)
    _raw_code(r, out)
    if r.pos != len(data):
        raise ValueError("%s: walk ended at %d of %d bytes" % (path, r.pos, len(data)))
    return out


if __name__ == "__main__":
    import sys

    for p in sys.argv[1:]:
        print(p, sizes(p))
