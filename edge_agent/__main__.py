"""`python -m edge_agent --config agent.toml`: the agent service without the `fleet` CLI's imports."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge_agent.service import run_service


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m edge_agent", description="fleetpulse edge agent")
    parser.add_argument("--config", type=Path, required=True, help="agent TOML file")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args()
    return run_service(args.config, args.log_level)


if __name__ == "__main__":
    sys.exit(main())
