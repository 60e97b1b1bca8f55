"""Vectorised fault detection and the road-hazard map (numpy/scipy pure kernels).

Not built yet. It will read telemetry from PostgreSQL, run pure kernels on numpy columns and
write faults and hazards back.
"""
