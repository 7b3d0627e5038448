"""Channel importance: gradient-free statistics and the gradient-based references."""
