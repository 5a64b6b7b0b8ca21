"""jungle: camera-trap videos to calibrated per-species probabilities."""
__version__ = "0.1.0"
