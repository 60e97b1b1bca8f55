"""Servers started on this machine as child processes: a private Mosquitto (and the dynamic-security
configuration that binds client ids to logins), the embedded amqtt broker with the fleet's login and
ACL plugins, and the embedded PostgreSQL.

The `fleet` CLI uses them for a configuration-free start, the benchmarks and the tests for private
brokers and databases. They depend on `contract` only; no product package imports them.
"""
