"""The receive loop's burst reading (`ingest.service._read_in_bursts`): one readable event reads on
while the socket has data, up to the cap, and stops at the first error, as paho's own read would."""

from __future__ import annotations

import contextlib
import socket

import paho.mqtt.client as mqtt

from ingest.service import _read_in_bursts


class _OnePacketPerRead:
    """Stands in for paho's client: each `loop_read` takes one byte (one "packet") off the socket."""

    def __init__(self, sock: socket.socket, fail_at: int | None = None) -> None:
        self.sock, self.reads, self.fail_at = sock, 0, fail_at

    def socket(self) -> socket.socket:
        return self.sock

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        self.reads += 1
        if self.fail_at is not None and self.reads == self.fail_at:
            return mqtt.MQTT_ERR_CONN_LOST
        with contextlib.suppress(BlockingIOError):  # paho answers "nothing to read" with success too
            self.sock.recv(1)
        return mqtt.MQTT_ERR_SUCCESS


def _pair(data: bytes) -> tuple[socket.socket, socket.socket]:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    theirs.sendall(data)
    return ours, theirs


def test_a_readable_event_reads_every_waiting_packet_up_to_the_cap() -> None:
    ours, theirs = _pair(b"x" * 300)
    client = _OnePacketPerRead(ours)
    try:
        _read_in_bursts(client, 256)  # type: ignore[arg-type]
        assert client.loop_read() == mqtt.MQTT_ERR_SUCCESS
        assert client.reads == 256  # the cap: the event loop gets its turn back
        assert client.loop_read() == mqtt.MQTT_ERR_SUCCESS
        assert client.reads == 300  # the rest, then the socket is empty and reading stops
        client.loop_read()
        assert client.reads == 301  # one read per event when nothing is waiting, as before
    finally:
        ours.close()
        theirs.close()


def test_an_error_stops_the_burst_and_is_returned() -> None:
    ours, theirs = _pair(b"x" * 50)
    client = _OnePacketPerRead(ours, fail_at=10)
    try:
        _read_in_bursts(client, 256)  # type: ignore[arg-type]
        assert client.loop_read() == mqtt.MQTT_ERR_CONN_LOST
        assert client.reads == 10
    finally:
        ours.close()
        theirs.close()
