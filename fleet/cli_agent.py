"""`fleet` commands of one area, registered by `fleet.cli`. Kept apart so that each area's
commands live next to nothing else's.

Edge agent: `fleet agent --config agent.toml` (the in-car service), `fleet campaign validate|push`,
and `fleet bench agent`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

campaign_app = typer.Typer(help="Collection campaigns for edge agents.", no_args_is_help=True)


def agent(
    config: Annotated[Path, typer.Option("--config", help="Agent TOML file (deploy/agent.example.toml).")],
    log_level: Annotated[str, typer.Option(help="Logging level.")] = "INFO",
) -> None:
    """Run the in-car edge agent until SIGTERM/SIGINT (systemd: deploy/systemd/fleet-agent.service)."""
    from edge_agent.service import run_service

    code = run_service(config, log_level)
    if code:
        raise typer.Exit(code)


@campaign_app.command("validate")
def campaign_validate(file: Annotated[Path, typer.Argument(help="Campaign JSON file.")]) -> None:
    """Check a campaign document; exit 1 with the reason when it is invalid."""
    from edge_agent.campaign import CampaignError, parse_campaign

    try:
        campaign = parse_campaign(file.read_bytes())
    except CampaignError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"ok: {campaign.version_tag}, {len(campaign.signals)} signals, {len(campaign.triggers)} triggers"
    )


@campaign_app.command("push")
def campaign_push(
    vehicle_id: Annotated[str, typer.Argument(help="Vehicle id.")],
    file: Annotated[Path, typer.Argument(help="Campaign JSON file.")],
) -> None:
    """Validate and publish a campaign, retained, on fleet/v1/<vehicle>/config (needs FLEET_MQTT_URL
    with the ingest account, which may write config topics)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from contract import accounts, topics
    from contract.accounts import ClientIdError, login_endpoint
    from contract.endpoint import MqttEndpoint
    from edge_agent.campaign import CampaignError, parse_campaign
    from fleet.settings import load_settings

    settings = load_settings()
    if not settings.mqtt_url:
        typer.echo("FLEET_MQTT_URL is not set", err=True)
        raise typer.Exit(2)
    payload = file.read_bytes()
    try:
        parse_campaign(payload)
    except CampaignError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    try:  # its own login of the ingest account: a running `fleet ingest` keeps its session
        ep = login_endpoint(MqttEndpoint.from_url(settings.mqtt_url), accounts.INGEST_CAMPAIGN)
    except ClientIdError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=accounts.INGEST_CAMPAIGN if ep.username else "",
        protocol=mqtt.MQTTv311,
    )
    if ep.username:
        client.username_pw_set(ep.username, ep.password)
    if ep.tls:
        client.tls_set()
    client.connect(ep.host, ep.port)
    client.loop_start()
    try:
        info = client.publish(topics.topic_for(vehicle_id, topics.CONFIG), payload, qos=1, retain=True)
        info.wait_for_publish(10)
        if not info.is_published():
            typer.echo("the broker did not acknowledge the campaign", err=True)
            raise typer.Exit(1)
    finally:
        client.disconnect()
        client.loop_stop()


def bench_agent(
    duration: Annotated[float, typer.Option(min=5, help="Measured seconds.")] = 30.0,
    rate_hz: Annotated[float, typer.Option(help="Base sampling rate.")] = 10.0,
    entry: Annotated[
        str,
        typer.Option(help="module: `python -m edge_agent` (as systemd runs it); fleet: `fleet agent`."),
    ] = "module",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """The agent process (`fleet agent`, simulated source, every catalogue signal at full rate)
    publishing to a local broker: CPU share of one core, peak RSS, wire bytes per sample."""
    from benchmarks.agent import run_agent_bench

    result = run_agent_bench(duration_s=duration, rate_hz=rate_hz, entry=entry)
    if as_json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            typer.echo(f"{key:28} {value}")


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add this area's commands to the root app and its benchmarks to `fleet bench`."""
    app.command("agent")(agent)
    app.add_typer(campaign_app, name="campaign")
    bench_app.command("agent")(bench_agent)
