"""The benchmarks behind `fleet bench ...`: ingest throughput and memory, Mosquitto's autosave loss,
the agent's footprint and the simulator's speed, each against real brokers and databases.

They sit above the product packages and below the CLI: they may use any product package and
`localservers`, and nothing but `fleet` imports them. Results, with commands: docs/benchmarks.md.
"""
