"""kepubot: a publishing bot for science communication (科普)."""

__version__ = "0.1.0"
