"""saviorrec: semantic-behavior alignment (SaviorRec) for cold-start CTR prediction."""

__version__ = "0.1.0"
