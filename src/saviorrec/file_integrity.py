"""Files that exist but cannot be read back whole, and the one-line error that names them.

Writers rename a finished temporary file into place, but nothing is synced to disk: a power cut
or a full disk can still leave a file cut short or zero-filled, and anything can overwrite one.
pyarrow and torch report that deep in their own stacks without naming the file; readers check
first (or on failure) and raise :class:`CorruptFileError`: the file, the problem, what to do.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any


class CorruptFileError(ValueError):
    """``path`` exists but is not a readable ``what``. A ValueError: the stage entry points and
    Airflow tasks print it as one line and do not retry (a retry reads the same bytes)."""

    def __init__(self, what: str, path: str | Path, problem: str, fix: str):
        self.path = str(path)
        super().__init__(f"corrupt {what} {path} ({problem}): {fix}")


def one_line(err: BaseException) -> str:
    """The first line of a library's error message."""
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def torch_archive_problem(path: str | Path) -> str | None:
    """Why ``path`` is not a complete ``torch.save`` archive (a zip whose members all pass their
    CRC-32 check), None when it is. Reads every byte, unpickles nothing."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, EOFError):
        return "not a complete torch archive: truncated or overwritten"
    return f"member {bad} fails its CRC check: bytes overwritten" if bad else None


def require_torch_archive(path: str | Path, what: str, fix: str) -> Path:
    """``path`` when it is a complete torch archive; CorruptFileError otherwise."""
    problem = torch_archive_problem(path)
    if problem is not None:
        raise CorruptFileError(what, path, problem, fix)
    return Path(path)


def load_torch(path: str | Path, what: str, fix: str, **kwargs: Any) -> Any:
    """``torch.load(path, map_location="cpu", **kwargs)`` after the archive check."""
    import torch

    return torch.load(require_torch_archive(path, what, fix), map_location="cpu", **kwargs)


def load_npy(path: str | Path, what: str, fix: str) -> Any:
    """``numpy.load(path)``; CorruptFileError naming it when the file is cut off or not an array."""
    import numpy as np

    try:
        return np.load(path)
    except FileNotFoundError:
        raise
    except (ValueError, EOFError, OSError) as err:  # what numpy makes of a cut-off or foreign file
        raise CorruptFileError(what, path, f"truncated or overwritten: {one_line(err)}", fix) from None


def read_json(path: str | Path, what: str, fix: str) -> Any:
    """A JSON file's content; CorruptFileError naming it when it does not parse."""
    import json

    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CorruptFileError(what, path, f"not valid JSON: {one_line(err)}", fix) from None
