"""Rolling backtest of the daily refresh: replay N consecutive steps offline, exactly as the DAG runs them.

    saviorrec backtest --root runs/backtest --days 14 --variants saviorrec,id_only --encoder-every 7

Each step is one run of ``dags/saviorrec_daily.py``: the same stage functions
(:func:`saviorrec.stages.run_stage`) and the same encoder cadence
(:mod:`saviorrec.orchestration.cadence`), evaluated on its day (or month) before it is trained on.

- :mod:`.plan`: which steps, and the params each step and variant runs with;
- :mod:`.views`: what each step's workspace sees (the data the DAG would have had that day);
- :mod:`.measures`: AUCs, SID churn/collisions, z drift of a finished step;
- :mod:`.replay`: the loop, resumable step by step;
- :mod:`.report`: the table, the plot and the printed summary.
"""

from saviorrec.backtest.replay import BacktestError, run_backtest

__all__ = ["BacktestError", "run_backtest"]
