"""Privacy: an owner's erasure request (`erasure`), retention per data class (`retention`), and
positions coarsened for roles that need no exact place (`positions`). docs/privacy.md says what
erasure and retention remove and keep, and why; docs/api.md which role sees coarse positions."""
