"""The `fleet` command line, the settings object, and the embedded servers (PostgreSQL, amqtt).

This is the imperative shell that wires the other packages together; none of them import it.
"""
