"""os2d-studio engine: OS2D model, data, importance, pruning, training, evaluation. Never imports Qt."""

__version__ = "0.1.0"
