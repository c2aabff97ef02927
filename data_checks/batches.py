"""One validation result out of many batches: a big table validated a slice at a time.

A streamed suite (e.g. the behavior log, batch by batch) holds row-level (map) expectations
only: their results are counts, and counts add up over batches (rows checked, rows failing,
examples with the day they came from). Uniqueness does not add up: a value may repeat across
two batches, so the values of every unique-column are spilled to disk, hashed into buckets,
and counted bucket by bucket at the end; memory stays one batch plus one bucket.
"""

from __future__ import annotations

import copy
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult
from great_expectations.validator.validator import calc_validation_statistics

MAX_EXAMPLES = 20          # example values (and their rows' days) kept per expectation over all batches
BUCKET_ROWS = 500_000      # rows per spill bucket when uniqueness is counted at the end (6 MB on disk)
_SPILLED = np.dtype([("value", "<i8"), ("key", "<i4")])
UNIQUE = "expect_column_values_to_be_unique"


class UniqueAcrossBatches:
    """Counts rows whose ``column`` value occurs more than once over all batches, like GX would on one frame."""

    def __init__(self, column: str, key_column: str | None, expected_rows: int, folder: Path):
        self.column, self.key_column = column, key_column
        self.buckets = max(1, -(-expected_rows // BUCKET_ROWS))
        self.folder = folder
        self.keys: list[str] = []  # key_column values (e.g. days), numbered in order of appearance

    def add(self, frame: pd.DataFrame) -> None:
        values = pd.to_numeric(frame[self.column], errors="coerce")
        present = values.notna().to_numpy()
        if not present.any():
            return
        keys = frame[self.key_column] if self.key_column else pd.Series("", index=frame.index)
        codes, uniques = pd.factorize(keys[present].astype(str))
        spilled = np.empty(int(present.sum()), dtype=_SPILLED)
        spilled["value"] = values[present].to_numpy(dtype="int64")
        spilled["key"] = codes + len(self.keys)
        self.keys += list(uniques)
        bucket = np.remainder(spilled["value"], self.buckets)
        for b in np.unique(bucket):
            with open(self.folder / f"{self.column}.{b}", "ab") as sink:
                spilled[bucket == b].tofile(sink)

    def count(self) -> tuple[int, list[tuple[int, str]], list[str]]:
        """(rows whose value repeats, a few of them as (value, key), every key (day) they sit in)."""
        rows, examples, keys = 0, [], set()
        for b in range(self.buckets):
            path = self.folder / f"{self.column}.{b}"
            if not path.exists():
                continue
            spilled = np.fromfile(path, dtype=_SPILLED)
            spilled = spilled[np.argsort(spilled["value"], kind="stable")]
            same = spilled["value"][1:] == spilled["value"][:-1]
            repeated = np.zeros(len(spilled), dtype=bool)  # a value equal to its neighbour in sorted order
            repeated[1:] |= same
            repeated[:-1] |= same
            rows += int(repeated.sum())
            examples += [(int(v), self.keys[k]) for v, k in spilled[repeated][: MAX_EXAMPLES - len(examples)]]
            keys.update(int(k) for k in np.unique(spilled["key"][repeated]))
        return rows, examples, sorted({self.keys[k] for k in keys})


def _percent(part: int, whole: int) -> float | None:
    return 100.0 * part / whole if whole else None


class MergedResult:
    """Adds up the per-batch results of one suite into one ExpectationSuiteValidationResult."""

    def __init__(self, index_columns: list[str], expected_rows: int):
        self.index_columns = index_columns
        self.expected_rows = expected_rows
        self.merged: ExpectationSuiteValidationResult | None = None
        self.batches: list[dict] = []
        self._spill = tempfile.TemporaryDirectory(prefix="saviorrec-unique-")
        self.unique: dict[int, UniqueAcrossBatches] = {}

    def add(self, label: str, frame: pd.DataFrame, result: ExpectationSuiteValidationResult) -> None:
        self.batches.append({"days": label, "rows": len(frame), "success": bool(result.success)})
        if self.merged is None:
            self.merged = copy.deepcopy(result)
            for i, evr in enumerate(self.merged.results):
                self._require_counts(evr)
                if evr.expectation_config.type == UNIQUE:
                    self.unique[i] = UniqueAcrossBatches(
                        evr.expectation_config.kwargs["column"], (self.index_columns or [None])[0],
                        self.expected_rows, Path(self._spill.name))
        else:
            for into, evr in zip(self.merged.results, result.results, strict=True):
                self._require_counts(evr)
                _add(into, evr)
        for tracker in self.unique.values():
            if len(frame):
                tracker.add(frame)

    @staticmethod
    def _require_counts(evr) -> None:
        if evr.exception_info and evr.exception_info.get("raised_exception"):
            return
        if "unexpected_count" not in (evr.result or {}):
            raise TypeError(f"{evr.expectation_config.type} is not a row-level expectation: its result "
                            "cannot be added up over batches; validate it on one frame")

    def result(self) -> ExpectationSuiteValidationResult:
        merged = self.merged
        try:
            if len(self.batches) > 1:
                for i, tracker in self.unique.items():
                    _repeat_across_batches(merged.results[i], tracker.key_column, *tracker.count())
        finally:
            self._spill.cleanup()
        for evr in merged.results:
            _finish(evr)
        stats = calc_validation_statistics(merged.results)
        merged.success = stats.success
        merged.statistics = {
            "evaluated_expectations": stats.evaluated_expectations,
            "successful_expectations": stats.successful_expectations,
            "unsuccessful_expectations": stats.unsuccessful_expectations,
            "success_percent": stats.success_percent,
        }
        return merged


def _add(into, evr) -> None:
    """Add one batch's result of an expectation to the running total ``into``."""
    if evr.exception_info and evr.exception_info.get("raised_exception") and not (
            into.exception_info and into.exception_info.get("raised_exception")):
        into.exception_info = evr.exception_info
    into.success = bool(into.success) and bool(evr.success)
    total, part = into.result, evr.result or {}
    for key in ("element_count", "unexpected_count", "missing_count"):
        if key in part:
            total[key] = total.get(key, 0) + part[key]
    for key in ("partial_unexpected_list", "partial_unexpected_index_list"):
        if part.get(key):
            total[key] = (total.get(key) or []) + part[key]
    if part.get("partial_unexpected_counts"):
        counts = Counter({_hashable(c["value"]): c["count"] for c in total.get("partial_unexpected_counts") or []})
        counts.update({_hashable(c["value"]): c["count"] for c in part["partial_unexpected_counts"]})
        total["partial_unexpected_counts"] = [{"value": v, "count": n} for v, n in counts.most_common()]


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value


def _repeat_across_batches(evr, key_column: str | None, rows: int, examples: list[tuple[int, str]],
                           keys: list[str]) -> None:
    """Uniqueness over the whole table: rows whose value also sits in another batch fail too.

    The examples name every key (day) holding a repeated value, first those of the example values."""
    total = evr.result
    if rows <= total.get("unexpected_count", 0):
        return
    total["unexpected_count"] = rows
    evr.success = False
    column = evr.expectation_config.kwargs["column"]
    values = [v for v, _ in examples]
    total["partial_unexpected_list"] = values
    total["partial_unexpected_counts"] = [{"value": v, "count": n} for v, n in Counter(values).most_common()]
    if key_column:
        shown = [{column: v, key_column: k} for v, k in examples]
        named = {k for _, k in examples}
        total["partial_unexpected_index_list"] = shown + [{key_column: k} for k in keys if k not in named]


def _finish(evr) -> None:
    """Percentages recomputed from the summed counts; example lists capped."""
    total = evr.result or {}
    if "unexpected_count" not in total:
        return
    for key in ("partial_unexpected_list", "partial_unexpected_index_list", "partial_unexpected_counts"):
        if key in total and total[key] is not None:
            total[key] = total[key][:MAX_EXAMPLES]
    element, missing, unexpected = total.get("element_count", 0), total.get("missing_count", 0), total["unexpected_count"]
    if "missing_percent" in total:
        total["missing_percent"] = _percent(missing, element)
    if "unexpected_percent_total" in total:
        total["unexpected_percent_total"] = _percent(unexpected, element)
    for key in ("unexpected_percent", "unexpected_percent_nonmissing"):
        if key in total:
            total[key] = _percent(unexpected, element - missing)
    mostly = evr.expectation_config.kwargs.get("mostly")
    if mostly is not None and not (evr.exception_info or {}).get("raised_exception"):
        evr.success = bool(unexpected == 0 or (element - missing and unexpected / (element - missing) <= 1 - mostly))
