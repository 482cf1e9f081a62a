"""claimant: a race-free resource scheduler for clouds."""

__version__ = "0.1.0"
