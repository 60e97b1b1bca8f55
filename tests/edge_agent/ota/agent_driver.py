"""The agent as a process, as `python -m edge_agent` runs it, that SIGKILLs itself the first time
its installer reaches `--kill` (e.g. "write:chunk", "saved:health_check"): the power cut of the
agent's OTA test (test_agent_ota.py).

    python agent_driver.py AGENT_TOML --kill POINT
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from edge_agent.agent import Agent
from edge_agent.config import load_config
from edge_agent.sources import make_source


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("config", type=Path)
    parser.add_argument("--kill", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def probe(point: str) -> None:
        if point == args.kill:
            logging.getLogger("driver").warning("killing the agent at %s", point)
            os.kill(os.getpid(), signal.SIGKILL)

    config = load_config(args.config)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    Agent(config, make_source(config.source_kind, **config.source_options), ota_probe=probe).run(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
