"""Quantisation, confidence calibration and per-user baselines. Wraps ``model``; reads recorded windows."""
