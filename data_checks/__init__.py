"""Data-quality gates as code (Great Expectations 1.x).

One module per suite (``logs``, ``items``, ``sids``, ``model``) builds the expectations from
params (``checks:``) and the data's own history; ``runner`` runs them as real Checkpoints
in a persistent file context and builds Data Docs; ``gate`` turns the results into the
gate verdict that ``promote`` reads.
"""
