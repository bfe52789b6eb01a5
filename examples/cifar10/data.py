"""CIFAR-10 as uint8 arrays: from `keras.datasets`, python pickles, JPEG folders or a tarball.

Decoded arrays are cached as one `.npz` per source under the cache folder
(default `~/.cache/keras_relu`), outside the repository, so a source is decoded once.
"""

import hashlib
import os
import pickle
import tarfile
import tempfile
from pathlib import Path

import numpy as np

CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "keras_relu"
_TARBALL_SUFFIXES = (".tar.gz", ".tgz", ".tar")


class DataError(Exception):
    """The data set is missing or malformed; the message says what to do."""


def load(data_dir=None, cache_dir=DEFAULT_CACHE_DIR):
    """Returns `(x_train, y_train), (x_test, y_test)`: uint8 NHWC images, int64 labels.

    Args:
        data_dir: None for `keras.datasets.cifar10.load_data()`; or a folder holding
            `cifar-10-batches-py` (or being it), or `train/<class>/*.jpg` and
            `test/<class>/*.jpg`; or a `.tar.gz` of either, extracted into `cache_dir`.
        cache_dir: Where decoded arrays and extracted tarballs go.
    """
    if data_dir is None:
        return _load_keras_dataset()
    source = Path(data_dir).expanduser().resolve()
    if not source.exists():
        raise DataError(f"--data-dir {data_dir}: no such file or folder.")
    cache_dir = Path(cache_dir).expanduser()
    if source.is_file():
        if not source.name.endswith(_TARBALL_SUFFIXES):
            raise DataError(f"--data-dir {data_dir}: expected a folder or a .tar.gz archive.")
        source = _extract(source, cache_dir)
    cached = cache_dir / f"cifar10-{hashlib.sha1(str(source).encode()).hexdigest()[:12]}.npz"
    if cached.exists() and cached.stat().st_mtime >= source.stat().st_mtime:
        with np.load(cached) as arrays:
            return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
    (x_train, y_train), (x_test, y_test) = _decode(source)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=cache_dir, suffix=".npz", delete=False) as file:
        np.savez(file, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    os.replace(file.name, cached)
    return (x_train, y_train), (x_test, y_test)


def _load_keras_dataset():
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
    except Exception as error:  # no network, a truncated download...
        raise DataError(
            f"keras.datasets.cifar10.load_data() failed ({type(error).__name__}: {error}). "
            "Offline, pass --data-dir with a local copy (a cifar-10-batches-py folder, "
            "a train/<class>/*.jpg folder or a .tar.gz of either)."
        ) from None
    return (x_train, y_train.ravel().astype(np.int64)), (x_test, y_test.ravel().astype(np.int64))


def _extract(tarball, cache_dir):
    """Extracts `tarball` once into `cache_dir/<name>` and returns that folder."""
    name = tarball.name
    for suffix in _TARBALL_SUFFIXES:
        name = name.removesuffix(suffix)
    destination = cache_dir / name
    if destination.is_dir():
        return destination
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=cache_dir, prefix=f".{name}-"))
    try:
        with tarfile.open(tarball) as archive:
            archive.extractall(staging, filter="data")
    except (tarfile.TarError, OSError, EOFError) as error:
        raise DataError(f"--data-dir {tarball}: cannot extract it ({error}).") from None
    os.replace(staging, destination)  # Atomic: an interrupted extraction is not reused.
    return destination


def _decode(folder):
    """Finds the layout in `folder` (or one level down) and decodes it."""
    for candidate in (folder, *sorted(p for p in folder.iterdir() if p.is_dir())):
        if (candidate / "data_batch_1").exists():
            return _decode_pickles(candidate)
        if (candidate / "cifar-10-batches-py").is_dir():
            return _decode_pickles(candidate / "cifar-10-batches-py")
        if (candidate / "train").is_dir() and (candidate / "test").is_dir():
            return _decode_jpeg_folders(candidate)
    raise DataError(
        f"--data-dir {folder}: found neither cifar-10-batches-py/data_batch_1..5 and "
        "test_batch, nor train/<class>/*.jpg and test/<class>/*.jpg."
    )


def _decode_pickles(folder):
    train_files = sorted(folder.glob("data_batch_*"))
    if not train_files or not (folder / "test_batch").exists():
        raise DataError(f"{folder}: needs data_batch_1..5 and test_batch.")
    train = [_read_batch(path) for path in train_files]
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return (x_train, y_train), _read_batch(folder / "test_batch")


def _read_batch(path):
    try:
        with open(path, "rb") as file:
            batch = pickle.load(file, encoding="bytes")
        rows = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
        # Each row is 1024 red, 1024 green, 1024 blue values: channels first.
        images = rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    except (OSError, pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as error:
        raise DataError(f"{path}: not a CIFAR-10 python batch ({error!r}).") from None
    if len(images) != len(labels):
        raise DataError(f"{path}: {len(images)} images but {len(labels)} labels.")
    return images, labels


def _decode_jpeg_folders(folder):
    from PIL import Image
    from PIL import UnidentifiedImageError

    classes = sorted(p.name for p in (folder / "train").iterdir() if p.is_dir())
    if not classes:
        raise DataError(f"{folder / 'train'}: no class folders.")
    splits = []
    for split in ("train", "test"):
        images, labels = [], []
        for label, name in enumerate(classes):
            for path in sorted((folder / split / name).glob("*.jpg")):
                try:
                    with Image.open(path) as image:
                        images.append(np.asarray(image.convert("RGB")))
                except (OSError, UnidentifiedImageError) as error:
                    raise DataError(f"{path}: cannot decode it ({error}).") from None
                labels.append(label)
        if not images:
            raise DataError(f"{folder / split}: no <class>/*.jpg images.")
        if len({image.shape for image in images}) != 1:
            raise DataError(f"{folder / split}: the images do not all have the same size.")
        splits.append((np.stack(images), np.asarray(labels, dtype=np.int64)))
    return tuple(splits)
