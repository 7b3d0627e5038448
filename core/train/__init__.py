"""Training and fine-tuning: losses and the loop."""
