"""Evaluation: mAP and model profiling."""
