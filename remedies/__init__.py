"""Remedies: what happens after a fault is found. The catalogue (fault, model and software lead
to an OTA patch or a shop visit), the engine that acts on alarm changes, shop-visit booking and
the owner's notification outbox. Acts on `analytics`' alarms and on `ota`'s campaigns; reads the
registry; writes its own tables. OTA's signing, serving and rollout stay in `ota`.
"""
