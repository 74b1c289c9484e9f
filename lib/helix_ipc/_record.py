# helix_ipc._record: a small read-only-by-convention record for counters and results.
#
# Built in task context (never in an IRQ). Fields read as attributes (`s.sent`) or
# as keys (`s["sent"]`); `as_dict()` copies them.


class Record:
    """Named counters, readable as attributes or keys."""

    def __init__(self, fields, values):
        self._fields = fields
        for name, value in zip(fields, values):
            setattr(self, name, value)

    def __getitem__(self, name):
        if name not in self._fields:
            raise KeyError(name)
        return getattr(self, name)

    def as_dict(self):
        d = {}
        for name in self._fields:
            d[name] = getattr(self, name)
        return d

    def __eq__(self, other):
        if isinstance(other, Record):
            other = other.as_dict()
        return self.as_dict() == other

    def __repr__(self):
        out = ""
        for n in self._fields:
            out += "%s=%r, " % (n, getattr(self, n))
        return "%s(%s)" % (type(self).__name__, out[:-2])
