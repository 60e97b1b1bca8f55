"""Run ELM327-emulator (a CC-BY-NC-SA test tool, never imported by product code) on a TCP port,
with stored DTCs and a mode 03 answer that carries the DTC count byte, as ISO 15765 ECUs send it
and python-obd expects (the emulator's built-in answer lacks it).

Usage: python tests/edge_agent/elm_server.py PORT [DTC,DTC,...]   (DTCs as J2012 hex, e.g. 0301)
"""

from __future__ import annotations

import sys

from elm import obd_message


def _dtc_frames_with_count(emulator, dtc_list, sid, header=obd_message.ECU_R_ADDR_E):  # noqa: ANN001, ANN202
    codes = [] if emulator.counters.get("cmd_dtc_cleared") else [d for d in dtc_list if len(d) == 4]
    data = [sid, f"{len(codes):02X}"] + [byte for code in codes for byte in (code[:2], code[2:])]
    return obd_message.iso_tp_frames(data, header)


def main() -> None:
    port = sys.argv[1]
    codes = sys.argv[2].split(",") if len(sys.argv) > 2 and sys.argv[2] else []
    obd_message.DTC_STORED[:] = codes
    obd_message.dtc_frames = _dtc_frames_with_count
    sys.argv = ["elm", "-n", port, "-s", "car"]
    from elm.interpreter import main as elm_main

    elm_main()


if __name__ == "__main__":
    main()
