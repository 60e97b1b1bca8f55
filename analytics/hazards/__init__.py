"""The crowdsourced road-hazard map: candidate events in each vehicle's drive, sites that cluster
them across vehicles, passes over a site as evidence for and against it, and the map itself.

Kernels (pure, numpy): `geo`, `events`, `sites`, `passes`, `evidence`, `export`.
Shell (SQL): `analytics.hazard_store` and `analytics.hazard_job`. The design and its thresholds
are explained in docs/hazards.md.
"""
