# helix_ipc.errors: the one exception hierarchy of helix_ipc, and the shared argument
# check that raises TypeError/ValueError at the call that received a bad value.
#
# Raised from task context only (scheduler callbacks, threads, the main loop); the
# IRQ-safe entry points never raise, they return False and count the failure.


def check_int(value, name, lo=None, hi=None, where=""):
    """Return value if it is an int (not a bool) within lo..hi (None: unbounded);
    otherwise raise TypeError or ValueError naming the argument `name`."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("%s must be an int, got %s" % (name, type(value).__name__))
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ValueError("%s must be %s..%s%s, got %d" % (
            name, "" if lo is None else lo, "" if hi is None else hi, where, value))
    return value


class IpcError(Exception):
    """Base class of every error helix_ipc raises on purpose."""


class ModuleNotFound(IpcError):
    """No module is registered under the given id or name."""


class ChannelFull(IpcError):
    """A bounded channel or mailbox has no free slot."""


class ChannelClosed(IpcError):
    """The channel is closed (all senders closed, or the receiver closed)."""


class ChannelEmpty(IpcError):
    """Nothing is queued yet, and the channel is still open."""


class Timeout(IpcError):
    """A deadline passed."""


class Rejected(IpcError):
    """The receiver refused the request."""


class AlreadyRegistered(IpcError):
    """A module id or name is already taken."""


class InternalError(IpcError):
    """helix_ipc reached a state it should never reach."""
