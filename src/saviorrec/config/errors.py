"""One way to turn a pydantic ValidationError into a line a person can act on."""

from __future__ import annotations

from pydantic import ValidationError


def describe_validation_error(err: ValidationError, prefix: str = "", empty: str = "") -> str:
    """``"section.key: message; ..."``; ``prefix`` goes before each dotted location
    (e.g. ``"checks."``), ``empty`` names a problem with the whole object (e.g. ``"form"``)."""
    def where(loc) -> str:
        dotted = ".".join(str(part) for part in loc)
        return f"{prefix}{dotted}" if dotted else empty

    return "; ".join(f"{where(e['loc'])}: {e['msg']}" for e in err.errors())
