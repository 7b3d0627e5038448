"""The OS2D detector: trunk, correlation head, transformation net, box coder, checkpoints."""
