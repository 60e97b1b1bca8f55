"""Over-the-air software updates: signed artifacts (python-tuf) rolled out in waves.

Not built yet.
"""
