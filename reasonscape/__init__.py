"""ReasonScape: measure where in a space of task difficulty a model's reasoning holds and where it breaks."""

__version__ = "0.1.0"
