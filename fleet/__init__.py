"""The `fleet` command line and the settings object: the imperative shell on top of the layering
(`[tool.importlinter]` in pyproject.toml).

It wires the other packages together, reads the settings once, and starts the embedded servers
(`localservers`) when none are configured. No other package imports it.
"""
