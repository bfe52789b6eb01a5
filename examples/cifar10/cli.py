"""What the example scripts share on the command line: checked arguments, result files
that may be damaged, and Ctrl-C.

A bad argument is refused before anything trains, as argparse refuses a bad type: one
line naming the flag and the value, exit code 2. A result file that cannot be read
(a run stopped while it was copied, a hand edit, a file from an older run) is named
with what to do, never a traceback; results are written atomically, so Ctrl-C leaves
only whole files, and rerunning the same command resumes.

    parser.add_argument("--epochs", type=cli.positive_int)
    parser.add_argument("--seeds", type=cli.seed_list)
    parser.add_argument("--out", type=cli.results_folder)
"""

import argparse
import json
import sys
from pathlib import Path

INTERRUPTED = "interrupted; rerun the same command to resume"
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a process stopped by Ctrl-C.


def positive_int(text):
    """argparse type: an integer >= 1 (a count of epochs, images, examples per batch)."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1. Received: {text!r}")
    return value


def seed_list(text):
    """argparse type: comma-separated seeds, integers >= 0 (`0,1` -> `[0, 1]`)."""
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        seeds = None
    if not seeds or min(seeds) < 0:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated integers >= 0, such as 0,1. Received: {text!r}"
        )
    return seeds


def results_folder(text):
    """argparse type: a folder to keep results in (made if missing), not a file, nor
    a path through a file."""
    path = Path(text)
    for part in (path, *path.parents):
        if part.exists():
            if not part.is_dir():
                raise argparse.ArgumentTypeError(
                    f"must be a folder, and {part} is a file. Received: {text!r}"
                )
            break
    return text


class ResultFileError(ValueError):
    """A result file is not valid JSON, or lacks what a finished result holds."""


def read_result(path, required=(), redo="retrain that arm"):
    """The JSON object in the result file `path`, checked.

    Args:
        path: The file.
        required: Keys it must have; `"history.epoch_seconds"` is the key
            `epoch_seconds` of the object under `history`.
        redo: What deleting the file makes the next run do, for the message.

    Raises:
        ResultFileError: One line naming the file, what is wrong and what to do.
    """
    path = Path(path)
    try:
        payload = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        reason = f"not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        payload = None
    except (OSError, UnicodeDecodeError) as error:
        reason = f"unreadable: {getattr(error, 'strerror', None) or error}"
        payload = None
    except RecursionError:  # json's decoder recurses once per level of nesting.
        reason = "not a result: JSON nested too deeply"
        payload = None
    else:
        reason = None if isinstance(payload, dict) else "not a JSON object"
        for key in required if reason is None else ():
            found = payload
            for part in key.split("."):
                found = found.get(part) if isinstance(found, dict) else None
            if found is None:
                reason = f"no {key!r}: a truncated or unfinished run"
                break
    if reason is not None:
        raise ResultFileError(f"{path} is not a finished result ({reason}); delete it to {redo}.")
    return payload


def interrupted():
    """Says that Ctrl-C stopped the run and how to resume; returns the exit code."""
    print(INTERRUPTED, file=sys.stderr, flush=True)
    return EXIT_INTERRUPTED
