"""An asyncio transport over one node-channel stream: a relay circuit's end.

A relayed channel (``docs/relay.md``) is an ordinary node channel whose
bytes travel as the messages of a stream to the relay.  This transport lets
the unchanged :class:`~servent.net.node_channel.NodeChannel` run on such a
stream: ``write`` sends messages (at most 64 KiB each), a reader task feeds
each received message to the protocol, and the stream's end is the
connection's end.  The relay in the middle sees only the inner channel's
handshake and ciphertext.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from servent.net.node_channel import NodeStream
from servent.proto.channel import ChannelError, CloseCode

__all__ = ["MAX_DATA_MESSAGE", "StreamTransport"]

MAX_DATA_MESSAGE = 65535


class StreamTransport(asyncio.Transport):
    """See the module docstring; :meth:`start` once the protocol is set."""

    def __init__(self, stream: NodeStream, *, relay_label: str) -> None:
        super().__init__()
        self.stream = stream
        self.relay_label = relay_label
        self._protocol: asyncio.Protocol | None = None
        self._reading = asyncio.Event()
        self._reading.set()
        self._closing = False
        self._reader: asyncio.Task[None] | None = None
        self.finished = asyncio.Event()

    def start(self, protocol: asyncio.Protocol) -> None:
        self._protocol = protocol
        protocol.connection_made(self)
        self._reader = asyncio.get_running_loop().create_task(
            self._read(), name="relay-circuit-reader"
        )

    async def _read(self) -> None:
        error: Exception | None = None
        try:
            while True:
                await self._reading.wait()
                data = await self.stream.receive()
                if data is None:
                    break
                if self._protocol is not None and data:
                    self._deliver(self._protocol, data)
        except Exception as exc:  # the inner channel failed on what it read
            error = exc
        finally:
            self._closing = True
            if self._protocol is not None:
                self._protocol.connection_lost(error)
            self.finished.set()

    def _deliver(self, protocol: asyncio.Protocol, data: bytes) -> None:
        """Hand one received message to the protocol (a subclass may buffer it)."""
        protocol.data_received(data)

    # -- asyncio.Transport -----------------------------------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "relay":
            return self.relay_label
        if name == "peername":
            channel_transport = self.stream.channel.transport
            if channel_transport is not None:
                return channel_transport.get_extra_info("peername", default)
        return default

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        assert isinstance(protocol, asyncio.Protocol)
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self._protocol is not None
        return self._protocol

    def is_closing(self) -> bool:
        return self._closing or self.stream.closed_for_sending

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.is_closing():
            return
        view = memoryview(bytes(data))
        try:
            for start in range(0, len(view), MAX_DATA_MESSAGE):
                self.stream.send(bytes(view[start : start + MAX_DATA_MESSAGE]))
        except ChannelError:  # the channel to the relay is gone: so is the circuit
            self._closing = True

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            with contextlib.suppress(ChannelError):
                self.stream.close()

    def abort(self) -> None:
        self._closing = True
        self.stream.reset(CloseCode.NORMAL, "relayed channel aborted")
        if self._reader is not None:
            self._reader.cancel()

    def pause_reading(self) -> None:
        self._reading.clear()

    def resume_reading(self) -> None:
        self._reading.set()

    def is_reading(self) -> bool:
        return self._reading.is_set()

    def can_write_eof(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    async def wait_finished(self) -> None:
        """Until the circuit is over (the handler serving an incoming one waits here)."""
        with contextlib.suppress(asyncio.CancelledError):
            await self.finished.wait()
