"""Exception and warning types raised by axon_fn.

Every error is a subclass of a built-in type (``ValueError`` or ``TypeError``) so that existing
``except ValueError`` code keeps working, and of :class:`AxonError` so that callers can catch
everything axon_fn raises in one place.
"""

import sys

__all__ = [
    "AxonError",
    "ShapeError",
    "AxonTypeError",
    "InvalidArgumentError",
    "BackendMismatchError",
    "TracerError",
    "StagingError",
    "LayerError",
    "NativeUnavailableWarning",
]


class AxonError(Exception):
    """Base class of every error raised by axon_fn."""


class ShapeError(AxonError, ValueError):
    """An op or layer received arrays whose shapes do not fit together.

    The message names the op, the argument, the shape expected and the shape received.
    """


class InvalidArgumentError(AxonError, ValueError):
    """An argument has a value the function cannot use (a probability outside [0, 1], an empty
    range, a negative count...). The message names the function and the argument."""


class AxonTypeError(AxonError, TypeError):
    """An op received a value of the wrong kind (dtype, Python type)."""


class BackendMismatchError(AxonError, TypeError):
    """An op received numpy and cupy arrays together; axon_fn never copies between them silently."""


class TracerError(AxonError, TypeError):
    """A traced value was used in a way that would silently lose its gradient."""


class StagingError(TracerError):
    """A function compiled by :func:`axon_fn.jit` needs a concrete value while it is recorded
    (Python control flow on an array's value, or a numpy function given a staged array), so it
    cannot be replayed as a fixed sequence of ops."""


class LayerError(AxonError, ValueError):
    """A layer of a model failed while running; the message names the layer, its op and the
    shapes it received, and the original error is chained as ``__cause__``."""


class NativeUnavailableWarning(UserWarning):
    """The compiled C kernels could not be loaded; axon_fn runs on its numpy path."""


def add_note(err: BaseException, note: str) -> None:
    """``err.add_note(note)`` on every supported Python: 3.10 has no ``add_note`` and its
    tracebacks print no ``__notes__``, so there the note is also appended to the message.

    >>> err = ValueError("bad shape")
    >>> add_note(err, "in axon_fn op 'add'")
    >>> err.__notes__
    ["in axon_fn op 'add'"]
    """
    if sys.version_info >= (3, 11):
        err.add_note(note)
        return
    notes = getattr(err, "__notes__", None)
    if not isinstance(notes, list):
        notes = []
        try:
            err.__notes__ = notes
        except AttributeError:  # an exception type with __slots__
            return
    notes.append(note)
    if err.args and isinstance(err.args[0], str):
        err.args = (f"{err.args[0]}\n{note}", *err.args[1:])
