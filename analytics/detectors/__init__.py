"""Fault detectors: pure kernels, one module per fault family, each following the detector
contract in `analytics.findings` (a list of RAISE/CLEAR findings per vehicle).
"""
