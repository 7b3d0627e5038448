"""Evaluation: mAP, model profiling, and where two models' detections agree."""
