"""The server's OTA loop as two steps, each one call for a job or a command:

- `campaign_step`: reads the TUF repository's targets, steps every approved or running campaign
  with an `ota.offer_sender.OfferRecorder` (offers recorded in each campaign's transaction), then
  publishes the recorded offers not yet acknowledged (`publish_offers`);
- `report_step`: judges and records the stored update reports (`ota.report_step.check_reports`).

Owns `LoopConfig` (where the repository is, the URL vehicles reach it at, the broker and login the
offers go out with) and gluing the steps together. The jobs and commands that call them are
`remedies.loop_tasks`' and `fleet`'s. Give it an autocommit connection: each campaign and each
report is then a transaction of its own, and offers are published only after theirs committed.
Raises psycopg.Error.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from contract import accounts
from contract.endpoint import MqttEndpoint
from ota.command_link import CommandPublisher
from ota.compatibility import TargetInfo, targets_from_listing
from ota.controller import Offer, OfferDeferred, step_campaigns
from ota.offer_sender import OfferRecorder, publish_offers
from ota.report_step import check_reports
from ota.repository import OtaRepository, RepositoryError


@dataclass(frozen=True)
class LoopConfig:
    repo_dir: Path | None  # the TUF repository directory (read only: targets and their custom metadata)
    repository_url: str | None  # the repository as vehicles reach it (https://ota.example.com/)
    endpoint: MqttEndpoint | None  # the broker, with the ingest account (None: offers are not published)
    client_id: str = accounts.INGEST_OTA
    publish_timeout_s: float = 10.0
    publish_limit: int = 10_000
    report_limit: int = 10_000


def read_targets(repo_dir: Path) -> list[TargetInfo]:
    """The published targets. Raises RepositoryError when there is no repository."""
    return targets_from_listing(OtaRepository(repo_dir).list_targets())


def campaign_step(
    conn: psycopg.Connection, config: LoopConfig, *, now: dt.datetime | None = None
) -> dict[str, Any]:
    """Step the campaigns and publish their offers; the step's and the publishing's reports. `now`
    (default: the wall clock) is the controller's time and the offers' `issued_at_us`: a simulated
    fleet passes its own clock, so that its reports are not judged stale."""
    problems: list[str] = []
    send: Any
    if config.repo_dir is None or not config.repository_url:
        why = "no OTA repository configured (FLEET_OTA_REPO_DIR and FLEET_OTA_REPOSITORY_URL)"
        send = _deferring(why)
        problems.append(why)
    else:
        try:
            clock = None if now is None else (lambda: now)
            send = OfferRecorder(conn, read_targets(config.repo_dir), config.repository_url, clock=clock)
        except RepositoryError as exc:
            send = _deferring(f"the OTA repository cannot be read: {exc}")
            problems.append(str(exc))
    step = step_campaigns(conn, send, now=now)
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.commit()  # a connection that is not autocommit: the offers must be committed before they go out
    endpoint = config.endpoint

    def connect() -> CommandPublisher:
        assert endpoint is not None
        return CommandPublisher(endpoint, config.client_id, timeout_s=config.publish_timeout_s)

    published = publish_offers(
        conn, connect if endpoint is not None else None, limit=config.publish_limit, now=now
    )
    return {**step.as_dict(), "publish": published.as_dict(), "problems": problems}


def report_step(conn: psycopg.Connection, config: LoopConfig) -> dict[str, Any]:
    """Judge and record the stored update reports; the step's report."""
    return check_reports(conn, limit=config.report_limit).as_dict()


def _deferring(why: str) -> Any:
    def send(_offer: Offer) -> None:
        raise OfferDeferred(why)

    return send
