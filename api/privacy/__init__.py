"""Privacy: an owner's erasure request (`erasure`) and retention per data class (`retention`).
docs/privacy.md says what each removes and keeps, and why."""
