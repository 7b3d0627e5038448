"""Datasets in the OS2D CSV format, the synthetic benchmark, images and video."""
