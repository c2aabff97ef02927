"""The pair sets z is judged on, each asking a different question (metrics/encoder.json, codebook.json).

- warm: held-out pairs of items the encoder trained on (how well z fits known behavior);
- cold: pairs touching an item whose pairs were all held out (extrapolation from content);
- future: each user's next click after the training cut (behavior yet to come; ordered pairs);
- future_new: the future pairs whose target was listed after the cut (the cold-start question).

The future sets read the evaluation window, for this report only: nothing trains on them or
chooses the encoder with them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from saviorrec.data import io
from saviorrec.data.pairs import future_pairs, read_clicks
from saviorrec.workspace import Workspace


@dataclass(frozen=True)
class RetrievalSets:
    warm: pd.DataFrame
    cold: pd.DataFrame
    future: pd.DataFrame
    future_new: pd.DataFrame

    ORDERED = ("future", "future_new")  # a next click has a direction; mined pairs do not

    def items(self) -> dict[str, pd.DataFrame]:
        return {"warm": self.warm, "cold": self.cold, "future": self.future, "future_new": self.future_new}


def retrieval_sets(ws: Workspace, items: pd.DataFrame, holdout: pd.DataFrame, cold: pd.DataFrame) -> RetrievalSets:
    """The sets for workspace ``ws``: ``holdout`` and ``cold`` as train_encoder split them
    (``paths.pairs``), the future ones from the events of its evaluation window."""
    train_end, eval_end = ws.split()
    if any(train_end <= d < eval_end for d in io.list_days(ws.path("events"))):
        clicks = read_clicks(ws.path("events"), start=train_end, end=eval_end)  # next clicks need only the clicks
        future, future_new = future_pairs(clicks, items, train_end)
    else:
        future = future_new = holdout.iloc[0:0][["trigger", "target"]]
    return RetrievalSets(warm=holdout, cold=cold, future=future, future_new=future_new)
