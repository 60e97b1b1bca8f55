"""The `fleet` command line, the settings object, and the embedded servers (PostgreSQL, amqtt).

This is the imperative shell that wires the other packages together. The library code of the
other packages does not import it; only their benchmark shells use its embedded servers and its
local Mosquitto (`fleet.mosquitto`).
"""
