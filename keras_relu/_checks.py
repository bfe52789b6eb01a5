"""Argument validation shared by the functions and the layers.

Every check raises `ValueError` naming the argument and the value it got, so a bad
config (hand-written or loaded from a file) fails where it is given, not later as a
NaN in the outputs.
"""

import math
import numbers


def _is_real_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_finite(name, value):
    """Returns `value` as a float, or raises if it is not a finite real number."""
    if not _is_real_number(value) or not math.isfinite(value):
        raise ValueError(f"`{name}` must be a finite real number. Received: {name}={value!r}")
    return float(value)


def check_non_negative(name, value):
    """Returns `value` as a float, or raises if it is not finite and >= 0."""
    value_as_float = check_finite(name, value)
    if value_as_float < 0:
        raise ValueError(f"`{name}` must be >= 0. Received: {name}={value!r}")
    return value_as_float


def check_bool(name, value):
    if not isinstance(value, bool):
        raise ValueError(f"`{name}` must be True or False. Received: {name}={value!r}")
    return value


def check_int(name, value):
    # `bool` is an `int` subclass; an axis of `True` is a bug, not axis 1.
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise ValueError(f"`{name}` must be an integer. Received: {name}={value!r}")
    return int(value)


def check_seed(value):
    # The seed state is uint32 on JAX and int32 on torch: a seed outside [0, 2**31)
    # would work on one backend and fail on another (a saved model could not move).
    if value is not None and not 0 <= check_int("seed", value) < 2**31:
        raise ValueError(f"`seed` must be in [0, 2**31) or None. Received: seed={value!r}")
    return value


def normalize_axis(name, axis, rank, allow_batch_axis=True):
    """Maps a possibly negative `axis` into `[0, rank)` or raises `ValueError`."""
    check_int(name, axis)
    if not -rank <= axis < rank:
        raise ValueError(
            f"`{name}` is out of range for an input of rank {rank}: valid axes "
            f"are {-rank}..{rank - 1}. Received: {name}={axis!r}"
        )
    if axis % rank == 0 and not allow_batch_axis:
        raise ValueError(
            f"`{name}` must not be the batch axis (axis 0 of an input of rank {rank}). "
            f"Received: {name}={axis!r}"
        )
    return axis % rank
