"""Fleets, vehicle models, vehicles, service centres, owners and their software inventory."""
