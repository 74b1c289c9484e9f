# helix_ipc.errors: the one exception hierarchy of helix_ipc.
#
# Raised from task context only (scheduler callbacks, threads, the main loop); the
# IRQ-safe entry points never raise, they return False and count the failure.


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
