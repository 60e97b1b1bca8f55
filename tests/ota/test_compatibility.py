"""The pure core of offering: which target a campaign offers, and the compatibility check against
the vehicle's last reported configuration (no I/O)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ota.compatibility import TargetInfo, check_compatibility, find_target, targets_from_listing

LISTING = [
    {"target": "ECM/4.2.1/ecm.bin", "length_bytes": 10, "sha256": "c" * 64, "ecu": "ECM", "version": "4.2.1",
     "hardware_ids": ["ecm-b12", "ecm-b13"]},
    {"target": "BCM/2.0.1/bcm.bin", "length_bytes": 5, "sha256": "d" * 64, "ecu": "BCM", "version": "2.0.1",
     "hardware_ids": ["bcm-1"]},
    {"target": "loose.bin", "length_bytes": 1, "sha256": "e" * 64},  # no custom metadata: never offered
]  # fmt: skip
TARGETS = targets_from_listing(LISTING)


def test_the_target_of_an_ecu_and_version() -> None:
    assert [t.name for t in TARGETS] == ["ECM/4.2.1/ecm.bin", "BCM/2.0.1/bcm.bin"]
    ecm = find_target(TARGETS, "ECM", "4.2.1")
    assert ecm == TargetInfo("ECM/4.2.1/ecm.bin", "ECM", "4.2.1", "c" * 64, 10, ("ecm-b12", "ecm-b13"))
    assert find_target(TARGETS, "ECM", "4.2.2") is None and find_target(TARGETS, "TCU", "4.2.1") is None


def test_each_outcome_of_the_check() -> None:
    ecm = TARGETS[0]
    ok = check_compatibility(ecm, {"ECM": ("4.2.0", "ecm-b13"), "BCM": ("1.0", "bcm-1")})
    assert ok.compatible and ok.hardware_id == "ecm-b13" and "ecm-b13 is among" in ok.detail
    missing = check_compatibility(ecm, {"BCM": ("1.0", "bcm-1")})
    assert not missing.compatible and missing.hardware_id is None and "no ECU ECM" in missing.detail
    blank = check_compatibility(ecm, {"ECM": ("4.2.0", "")})
    assert not blank.compatible and "no hardware id" in blank.detail
    other = check_compatibility(ecm, {"ECM": ("4.2.0", "ecm-x99")})
    assert not other.compatible and "ecm-x99 is not among the target's (ecm-b12, ecm-b13)" in other.detail


@given(
    hardware=st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=4, unique=True),
    reported=st.text(max_size=8),
    has_ecu=st.booleans(),
)
def test_compatible_exactly_when_the_reported_hardware_is_the_targets(
    hardware: list[str], reported: str, has_ecu: bool
) -> None:
    target = TargetInfo("ECM/1/x.bin", "ECM", "1", "f" * 64, 1, tuple(hardware))
    inventory = {"ECM": ("0.9", reported)} if has_ecu else {}
    check = check_compatibility(target, inventory)
    assert check.compatible == (has_ecu and reported != "" and reported in hardware)
    assert check.detail
