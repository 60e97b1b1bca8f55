"""Campaign documents: validation, the forward-only version rule, and what the source must read."""

from __future__ import annotations

import json

import pytest

from edge_agent.campaign import CampaignError, default_campaign, parse_campaign, supersedes

GOOD = {
    "campaign_id": "brakes",
    "version": 3,
    "signals": [{"path": "Vehicle.Speed", "period_ms": 1000, "deadband": 0.5}],
    "triggers": [
        {
            "name": "hard_brake",
            "condition": "Vehicle.Acceleration.Longitudinal < -0.4 * g or new_dtc",
            "pre_s": 5,
            "post_s": 2,
            "min_interval_s": 30,
        }
    ],
}


def test_valid_campaign_and_sampled_paths() -> None:
    campaign = parse_campaign(json.dumps(GOOD))
    assert campaign.version_tag == "brakes@3"
    assert campaign.sampled_paths == ("Vehicle.Speed", "Vehicle.Acceleration.Longitudinal")


@pytest.mark.parametrize(
    "patch",
    [
        {"signals": [{"path": "Vehicle.NotASignal"}]},
        {"signals": []},
        {"signals": [{"path": "Vehicle.Speed"}, {"path": "Vehicle.Speed"}]},
        {"signals": [{"path": "Vehicle.Speed", "period_ms": 1}]},
        {"signals": [{"path": "Vehicle.Speed", "deadband": -1}]},
        {"version": -1},
        {"flush_interval_s": 5.0},  # it is the fsync interval: at most 1 s
        {"triggers": [{"name": "t", "condition": "Vehicle.Speed >"}]},
        {"triggers": [{"name": "t", "condition": "Vehicle.Bogus > 1"}]},
        {"triggers": [{"name": "t", "condition": "__import__('os').system('x')"}]},
        {"unexpected": 1},
    ],
)
def test_invalid_campaigns_are_rejected(patch: dict) -> None:
    with pytest.raises(CampaignError):
        parse_campaign(json.dumps(GOOD | patch))


def test_rejects_non_json_and_huge_documents() -> None:
    with pytest.raises(CampaignError):
        parse_campaign(b"not json")
    with pytest.raises(CampaignError):
        parse_campaign(b" " * 70_000)


def test_versions_only_move_forward() -> None:
    v3 = parse_campaign(json.dumps(GOOD))
    v4 = parse_campaign(json.dumps(GOOD | {"version": 4}))
    assert supersedes(v3, None) and supersedes(v4, v3)
    assert not supersedes(v3, v4) and not supersedes(v3, v3)
    assert default_campaign().version == 0
