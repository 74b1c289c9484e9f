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
        return {name: getattr(self, name) for name in self._fields}

    def __eq__(self, other):
        if isinstance(other, Record):
            other = other.as_dict()
        return self.as_dict() == other

    def __repr__(self):
        return "%s(%s)" % (
            type(self).__name__,
            ", ".join("%s=%r" % (n, getattr(self, n)) for n in self._fields),
        )
