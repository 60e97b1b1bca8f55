"""The simulated vehicles' OTA responder: every offer ends in exactly one final report, nothing
installs unless the preconditions hold (parked throughout, power, window, consent), failure rates
match their settings over many vehicles, and the signed reports pass the server's checks
(`ota.reports.judge`) against an offer made by `ota.offers.new_offer`."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.stats import binom

from contract.update import FINAL_STATES, MaintenanceWindow, UpdateOffer, parse_update_report
from ota.offers import new_offer
from ota.reports import ACCEPTED, OfferRecord, judge
from simulators.ota_responder import DECLINED_DETAIL, INSTALLING, OtaReport, OtaResponder, draw, in_window
from simulators.scenario import OtaSpec

START_UNIX_S = 1_764_237_600.0  # 2025-11-27 10:00 UTC
DT_S = 10.0
FAST = OtaSpec(
    download_s=(20.0, 200.0),
    install_s=(60.0, 300.0),
    health_check_s=30.0,
    min_parked_s=30.0,
    consent_delay_s=(0.0, 600.0),
    give_up_after_s=6 * 3600.0,
)
# Each offer state may follow these (None: the first report).
NEXT = {
    None: {"downloading", "failed"},
    "downloading": {"verified", "failed"},
    "verified": {"verified", "installed", "failed"},  # a second `verified`: the owner declined
    "installed": {"committed", "rolled_back"},
}


def offer_for(
    window: MaintenanceWindow | None = None,
    consent: bool = False,
    version: str = "4.2.1",
    forced_after_s: float | None = None,  # seconds into the run; 0: urgency `forced`
) -> UpdateOffer:
    urgency = "soft" if forced_after_s is None else "forced" if forced_after_s == 0 else "forced_after"
    return new_offer(
        ecu="ECM",
        target=f"ECM/{version}/ecm-b12.bin",
        version=version,
        repository_url="https://ota.example.com/",
        now_us=int(START_UNIX_S * 1e6),
        maintenance_window=window,
        consent_required=consent,
        urgency=urgency,
        forced_after_us=int((START_UNIX_S + forced_after_s) * 1e6) if urgency == "forced_after" else None,
    )


def vehicle_ids(n: int) -> list[str]:
    return [f"SIM-0007-{i:05d}" for i in range(n)]


def run(
    responder: OtaResponder,
    offers: dict[int, UpdateOffer],
    parked: np.ndarray,  # (steps, vehicles) bool
    power: np.ndarray | None = None,
) -> tuple[list[OtaReport], list[tuple[float, int]], np.ndarray]:
    """Offer at t=0 (each vehicle running 4.2.0), then step; the reports, the (t, vehicle) of each
    install's start, and parked_s per step."""
    steps, n = parked.shape
    power = np.ones((steps, n), dtype=bool) if power is None else power
    reports = [r for v, offer in offers.items() for r in responder.offer(v, offer, "4.2.0", 0.0)]
    starts, parked_s, history = [], np.zeros(n), np.zeros((steps, n))
    for k in range(steps):
        t_s = (k + 1) * DT_S
        parked_s = np.where(parked[k], parked_s + DT_S, 0.0)
        history[k] = parked_s
        before = {v: j.phase for v, j in responder.jobs.items()}
        reports += responder.step(t_s, parked_s, power[k])
        starts += [
            (t_s, v)
            for v, j in responder.jobs.items()
            if j.phase == INSTALLING and before.get(v) != INSTALLING
        ]
    return reports, starts, history


def by_offer(reports: list[OtaReport]) -> dict[str, list[OtaReport]]:
    out: dict[str, list[OtaReport]] = {}
    for r in reports:
        out.setdefault(r.report.offer_id, []).append(r)
    return out


@st.composite
def fleets(draw_: st.DrawFn) -> tuple[OtaSpec, list[dict], np.ndarray, np.ndarray]:
    n = draw_(st.integers(1, 6))
    spec = dataclasses.replace(
        FAST,
        download_failure_rate=draw_(st.sampled_from([0.0, 0.3, 1.0])),
        install_failure_rate=draw_(st.sampled_from([0.0, 0.3, 1.0])),
        rollback_rate=draw_(st.sampled_from([0.0, 0.3, 1.0])),
        consent_probability=draw_(st.sampled_from([0.0, 0.5, 1.0])),
    )
    steps = int(spec.give_up_after_s / DT_S) + 60
    parked = np.zeros((steps, n), dtype=bool)
    for v in range(n):  # alternating stretches of driving and parking, of random lengths
        k, mode = 0, draw_(st.booleans())
        while k < steps:
            length = draw_(st.integers(1, 80))
            parked[k : k + length, v] = mode
            k, mode = k + length, not mode
    power = np.ones((steps, n), dtype=bool)
    power[:, 0] = draw_(st.booleans())  # vehicle 0 may have a flat battery throughout
    windows = st.none() | st.sampled_from(
        [
            MaintenanceWindow("10:30", "12:00", "Europe/London"),
            MaintenanceWindow("22:00", "05:00", "Asia/Tokyo"),
            MaintenanceWindow("09:00", "17:00", "America/New_York"),
        ]
    )
    forced = st.none() | st.sampled_from([0.0, 900.0, 4000.0])  # soft, forced, forced after a while
    terms = [
        {"window": draw_(windows), "consent": draw_(st.booleans()), "forced": draw_(forced)} for _ in range(n)
    ]
    return spec, terms, parked, power


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleets())
def test_every_offer_ends_once_and_nothing_installs_unless_allowed(fleet) -> None:  # noqa: ANN001
    spec, terms, parked, power = fleet
    n = parked.shape[1]
    responder = OtaResponder(spec, 7, vehicle_ids(n), START_UNIX_S)
    offers = {
        v: offer_for(t["window"], t["consent"], forced_after_s=t["forced"]) for v, t in enumerate(terms)
    }
    reports, starts, parked_s = run(responder, offers, parked, power)
    assert not responder.jobs  # give_up_after_s bounds every offer
    per_offer = by_offer(reports)
    assert set(per_offer) == {o.offer_id for o in offers.values()}
    for v, offer in offers.items():
        mine = per_offer[offer.offer_id]
        states = [r.report.state for r in mine]
        assert [s for s in states if s in FINAL_STATES] == [states[-1]]  # exactly one final, last
        assert [r.report.seq for r in mine] == list(range(1, len(mine) + 1))
        for prev, state in zip([None, *states[:-1]], states, strict=True):
            assert state in NEXT[prev], states
        draws = draw(spec, 7, v, offer, 0.0)
        for r in mine:
            k = int(round(r.t_s / DT_S)) - 1
            if r.report.state == "installed":  # parked throughout the install, after min_parked_s
                assert parked_s[k, v] >= spec.min_parked_s + draws.install_s - 1e-6
                assert power[:, v].all()
            after = r.report.after.version
            assert after == (offer.version if r.report.state in ("installed", "committed") else "4.2.0")
    for t_s, v in starts:  # each started parked, with power, in the window, with consent unless forced
        k = int(round(t_s / DT_S)) - 1
        offer, forced_after_s = offers[v], terms[v]["forced"]
        assert parked_s[k, v] >= spec.min_parked_s and power[k, v]
        assert in_window(offer.maintenance_window, START_UNIX_S + t_s)
        if offer.consent_required and (forced_after_s is None or t_s < forced_after_s):
            d = draw(spec, 7, v, offer, 0.0)
            assert d.consents and t_s >= d.consent_at_s


def test_failure_rates_stay_within_binomial_bounds() -> None:
    """2000 vehicles parked throughout: each failure happens at its rate, among those that got
    that far (bounds at a one-in-a-million tail on each side). An owner who declines leaves the
    offer waiting: one `verified` report says so, and it ends `expired`."""
    n = 2000
    spec = dataclasses.replace(
        FAST,
        download_failure_rate=0.1,
        install_failure_rate=0.05,
        rollback_rate=0.08,
        consent_probability=0.7,
        give_up_after_s=1500.0,  # after every consenting owner's install has started (<= 800 s)
    )
    responder = OtaResponder(spec, 11, vehicle_ids(n), START_UNIX_S)
    offers = {v: offer_for(consent=True) for v in range(n)}
    reports, _, _ = run(responder, offers, np.ones((200, n), dtype=bool))
    finals = [r.report for r in reports if r.report.state in FINAL_STATES]
    assert len(finals) == n and not responder.jobs
    count = {
        key: sum(1 for r in finals if (r.state, r.reason) == key)
        for key in {(r.state, r.reason) for r in finals}
    }

    def within(observed: int, trials: int, p: float) -> None:
        lo, hi = binom.ppf(1e-6, trials, p), binom.isf(1e-6, trials, p)
        assert lo <= observed <= hi, (observed, trials, p, lo, hi)

    download_failed = count.get(("failed", "download_failed"), 0)
    within(download_failed, n, 0.1)
    asked = n - download_failed
    declined = count.get(("failed", "expired"), 0)
    within(declined, asked, 0.3)
    told = {r.report.offer_id for r in reports if r.report.detail == DECLINED_DETAIL}
    assert len(told) == declined and told == {
        r.offer_id for r in finals if (r.state, r.reason) == ("failed", "expired")
    }
    installing = asked - declined
    install_failed = count.get(("failed", "install_failed"), 0)
    within(install_failed, installing, 0.05)
    rolled_back = count.get(("rolled_back", "health_check_failed"), 0)
    within(rolled_back, installing - install_failed, 0.08)
    assert count[("committed", None)] == installing - install_failed - rolled_back


def test_reports_pass_the_servers_checks_and_forgeries_do_not() -> None:
    ids = vehicle_ids(3)
    responder = OtaResponder(dataclasses.replace(FAST, download_failure_rate=0.0), 5, ids, START_UNIX_S)
    offers = {v: offer_for() for v in range(3)}
    reports, _, _ = run(responder, offers, np.ones((120, 3), dtype=bool))
    keys = {v: {responder.keys.key_id(vid): responder.keys.public_key(vid)} for v, vid in enumerate(ids)}
    for v, offer in offers.items():
        record = OfferRecord(offer.offer_id, ids[v], offer.nonce, offer.ecu, offer.issued_at_us)
        mine = by_offer(reports)[offer.offer_id]
        assert [r.report.state for r in mine][-1] in FINAL_STATES
        for r in mine:
            parsed = parse_update_report(r.payload)  # what ingest stores and ota judges
            assert judge(parsed, record, keys[v]) == ACCEPTED
            assert judge(parsed, record, keys[(v + 1) % 3]) == "unknown_key"  # another car's key
            record = dataclasses.replace(record, last_seq=parsed.seq)
        assert judge(parse_update_report(mine[-1].payload), record, keys[v]) == "replay"
        tampered = mine[-1].payload.replace(b'"seq":', b'"seq":1', 1)
        assert judge(parse_update_report(tampered), record, keys[v]) == "bad_signature"
    assert set(responder.keys.public_keys()) == set(ids)
    again = OtaResponder(FAST, 5, ids, START_UNIX_S)  # keys are derived from the seed
    assert again.keys.public_keys() == responder.keys.public_keys()
    assert OtaResponder(FAST, 6, ids, START_UNIX_S).keys.public_key(ids[0]) != again.keys.public_key(ids[0])


def test_refusals_redeliveries_and_a_busy_vehicle() -> None:
    responder = OtaResponder(FAST, 1, vehicle_ids(2), START_UNIX_S)
    first, second = offer_for(), offer_for(version="4.3.0")
    assert [r.report.state for r in responder.offer(0, first, "4.2.0", 0.0)] == ["downloading"]
    assert responder.offer(0, first, "4.2.0", 5.0) == []  # a QoS 1 redelivery: ignored
    busy = responder.offer(0, second, "4.2.0", 5.0)
    assert [(r.report.state, r.report.reason) for r in busy] == [("failed", "busy")]
    assert responder.jobs[0].offer.offer_id == first.offer_id  # the first install goes on
    same = responder.offer(1, offer_for(version="4.2.0"), "4.2.0", 0.0)
    assert [(r.report.state, r.report.reason) for r in same] == [("failed", "already_running")]
    none = responder.offer(1, offer_for(), None, 0.0)
    assert [(r.report.state, r.report.reason) for r in none] == [("failed", "unknown_ecu")]
    for zone in ("Mars/Olympus_Mons", "Europe", "a//b"):  # unknown, a directory, not a name
        bad_zone = offer_for(MaintenanceWindow("01:00", "02:00", zone))
        assert [r.report.reason for r in responder.offer(1, bad_zone, "4.2.0", 0.0)] == ["unknown_timezone"]


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        (MaintenanceWindow("09:00", "11:00", "UTC"), True),  # 10:00 UTC
        (MaintenanceWindow("09:00", "11:00", "Asia/Tokyo"), False),  # 19:00 there
        (MaintenanceWindow("18:00", "02:00", "Asia/Tokyo"), True),  # across midnight
        (MaintenanceWindow("10:00", "10:01", "UTC"), True),  # start included
        (MaintenanceWindow("08:00", "10:00", "UTC"), False),  # end excluded
        (None, True),
    ],
)
def test_the_window_is_read_in_its_own_time_zone(window: MaintenanceWindow | None, expected: bool) -> None:
    assert datetime.fromtimestamp(START_UNIX_S, ZoneInfo("UTC")).hour == 10
    assert in_window(window, START_UNIX_S) is expected


def test_the_scenario_sections_and_their_checks() -> None:
    from simulators.scenario import VisitSpec, builtin_scenario_path, load_scenario, parse_scenario

    sc = parse_scenario(
        {"ota": {"download_s": [1.0, 2.0], "rollback_rate": 0.5}, "visits": {"no_show_probability": 0.25}}
    )
    assert (
        sc.ota.download_s == (1.0, 2.0) and sc.ota.rollback_rate == 0.5 and sc.ota.install_s == (120.0, 600.0)
    )
    assert sc.visits == VisitSpec(0.25)
    assert load_scenario(builtin_scenario_path("city")).ota == OtaSpec()  # its section spells the defaults
    for bad in (
        {"ota": {"install_failure_rate": 1.5}},
        {"ota": {"download_s": [5.0, 1.0]}},
        {"ota": {"retries": 3}},
        {"visits": {"no_show_probability": -0.1}},
    ):
        with pytest.raises(ValueError):
            parse_scenario(bad)
    old = {"faults": [{"kind": "firmware_bug", "params": {"fixed_at_s": 100.0}}]}
    from simulators.engine import FleetSimulation
    from simulators.roads import city_grid

    with pytest.raises(ValueError, match="fixed_at_s"):
        FleetSimulation(parse_scenario({**old, "vehicles": 5}), city_grid(blocks=3), START_UNIX_S)
