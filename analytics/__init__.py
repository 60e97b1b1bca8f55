"""Vectorised fault detection, alarms and the road-hazard map: pure numpy/scipy kernels on columns.

Owns: the column shape kernels take (`columns`), what detectors conclude (`findings`), the
detectors, the alarm lifecycle and the jobs that read telemetry and write alarms. Kernels do no
I/O; the jobs are the shells around them.
"""
