"""TensorFlow's C++ logs off in the example's scripts, unless the user chose a level.

TensorFlow logs from C++ straight to the process's standard error: at import (CUDA
drivers not found, CPU instruction sets) and while training (cuInit errors on a
machine without a GPU, graph-optimizer notes such as "remapper failed"). None of it
is about the experiment, and to a new user it looks like a failure. Its Python logger
adds a 700-character warning about retracing when one process trains several models,
as the comparison does on purpose.
"""

import contextlib
import importlib.util
import logging
import os
import sys

LOG_LEVEL = "3"  # TF_CPP_MIN_LOG_LEVEL: 1 hides INFO, 2 also WARNING, 3 also ERROR.


def silence_tensorflow_logs():
    """Sets `TF_CPP_MIN_LOG_LEVEL` to 3, TensorFlow's Python logger to errors only, and
    imports Keras, and TensorFlow if installed, with standard error muted.

    Call it before anything imports Keras or TensorFlow. Does nothing when the user
    has set `TF_CPP_MIN_LOG_LEVEL` (`TF_CPP_MIN_LOG_LEVEL=0` shows every log again).
    TensorFlow 2.21's libraries log a few lines while they load, before they read that
    variable, so the import itself runs with file descriptor 2 sent to /dev/null; a
    failing import still raises, and its traceback is printed once stderr is back. On
    the JAX and PyTorch backends Keras's data adapters import TensorFlow later when it is
    installed, so it is imported here too (after Keras: torch must come first).
    """
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = LOG_LEVEL
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    if "keras" in sys.modules:
        return
    with _stderr_muted():
        import keras  # noqa: F401

        if importlib.util.find_spec("tensorflow") is not None:
            import tensorflow  # noqa: F401


@contextlib.contextmanager
def _stderr_muted():
    """Points file descriptor 2 (C++ code's stderr, and Python's) at /dev/null, then back."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
