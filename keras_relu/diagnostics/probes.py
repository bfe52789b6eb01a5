"""Probes that represent the data: a seeded random sample, stratified by class.

Dead-unit figures, revival scores and gradient checks are taken on a probe, and a
probe of the first rows of a data set can be one class: CIFAR-10 as many loaders
give it, and any subset that keeps their order, is stored class by class. A unit
that never fires on airplanes may fire on trucks, so such a probe overstates the
dead fraction and decides revival by one class. Draw probes at random instead:

```python
probe_x, probe_y = diagnostics.sample_probe(x_train, 512, labels=y_train, seed=0)
model.fit(x_train, y_train, callbacks=[diagnostics.DeadUnitMonitor(probe_x)])
```
"""

import numpy as np

from keras_relu import _checks


def probe_rows(num_rows, size, labels=None, seed=None):
    """Row indices of a random probe: `size` distinct rows of `num_rows`, in random order.

    With `labels`, the rows are stratified: each class gets its share of `size` in
    proportion to its count (largest remainders take the rounding), so every class
    with at least `num_rows / size` rows is in the probe.

    Args:
        num_rows: how many rows the data has.
        size: how many rows to draw, 1 to `num_rows`.
        labels: optional class per row (integers, or one-hot rows), length `num_rows`.
        seed: an integer for a reproducible draw, or `None` for a fresh one.

    Returns:
        A NumPy array of `size` distinct row indices.

    Example:

    >>> labels = np.repeat(np.arange(10), 100)  # 1,000 rows, ordered class by class
    >>> rows = probe_rows(1000, 50, labels=labels, seed=0)
    >>> np.bincount(labels[rows]).tolist()  # 5 of each class, not 50 of class 0
    [5, 5, 5, 5, 5, 5, 5, 5, 5, 5]
    """
    num_rows = _checks.check_int("num_rows", num_rows)
    size = _checks.check_int("size", size)
    if not 1 <= size <= num_rows:
        raise ValueError(
            f"`size` must be between 1 and the number of rows ({num_rows}). Received: size={size}"
        )
    rng = np.random.default_rng(_checks.check_seed(seed))
    if labels is None:
        return rng.choice(num_rows, size, replace=False)
    classes = _class_indices(labels, num_rows)
    values, counts = np.unique(classes, return_counts=True)
    shares = counts * size / num_rows
    taken = np.floor(shares).astype(int)
    # Largest remainders first; ties broken at random so no class is favoured by its label.
    order = np.lexsort((rng.random(len(values)), -(shares - taken)))
    taken[order[: size - taken.sum()]] += 1
    rows = np.concatenate(
        [
            rng.choice(np.flatnonzero(classes == value), count, replace=False)
            for value, count in zip(values, taken, strict=True)
        ]
    )
    return rng.permutation(rows)


def sample_probe(x, size, labels=None, seed=None):
    """A random probe of `size` rows of `x`, stratified by class when `labels` are given.

    Args:
        x: an array, or a list, tuple or dict of arrays with the same number of rows
            (a model with several inputs).
        size: how many rows to draw.
        labels: optional class per row (integers, or one-hot rows).
        seed: an integer for a reproducible draw, or `None` for a fresh one.

    Returns:
        The probe rows of `x` (same structure), or `(x_rows, label_rows)` when
        `labels` are given.

    Example:

    >>> x = np.arange(20.0).reshape(10, 2)
    >>> y = np.array([0] * 5 + [1] * 5)  # ordered class by class
    >>> probe_x, probe_y = sample_probe(x, 4, labels=y, seed=0)
    >>> sorted(probe_y.tolist())
    [0, 0, 1, 1]
    """
    import keras

    arrays = keras.tree.flatten(x)
    if not arrays:
        raise ValueError(f"`x` holds no arrays. Received: x={x!r}")
    num_rows = len(arrays[0])
    if any(len(array) != num_rows for array in arrays):
        lengths = [len(array) for array in arrays]
        raise ValueError(f"The arrays of `x` have different numbers of rows: {lengths}")
    rows = probe_rows(num_rows, size, labels=labels, seed=seed)
    probe = keras.tree.map_structure(lambda array: np.asarray(array)[rows], x)
    if labels is None:
        return probe
    return probe, np.asarray(labels)[rows]


def _class_indices(labels, num_rows):
    labels = np.asarray(labels)
    if len(labels) != num_rows:
        raise ValueError(
            f"`labels` must have one entry per row ({num_rows}). Received {len(labels)} labels"
        )
    if labels.ndim == 2 and labels.shape[1] > 1:  # One-hot (or soft) rows.
        return labels.argmax(axis=1)
    return labels.reshape(num_rows)
