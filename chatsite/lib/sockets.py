"""The outbound client's sockets under asyncio: httpcore's network backend on the event loop's own
transports, without anyio.

httpcore reaches the network through anyio, which costs on every socket operation a cancel scope
with a timer of its own, the current async library looked up twice, an exception-mapping context
manager and a pause/resume of the transport around each read. A model's answer arrives in hundreds
of small pieces, one socket read each, so in a web process relaying many answers that overhead was a
quarter of the relay's own CPU (py-spy; see docs/benchmarks.md). Here a read returns what is buffered
at once, or waits on a plain future with one ``call_later`` timer; a write hands the bytes to the
transport and waits only when the transport pushes back. The protocol keeps reading while a
connection sits idle in the pool (bounded: it pauses above ``HIGH_WATER`` bytes), so whether a kept
connection was closed by the server (``is_readable``) is known without a system call.

``chatsite.lib.http`` installs it under its deadline wrapper, so every operation is still bounded by
the request's deadline, and every address was checked before a connection is made (the SSRF rules
are not here: this is only how bytes move).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable

import httpcore

HIGH_WATER = 256 * 1024  # bytes buffered before the protocol stops reading from the socket
LOW_WATER = 64 * 1024  # ... and starts again once a read brings the buffer below this


class _Protocol(asyncio.Protocol):
    """The bytes received on one connection, kept until read, and the state of the connection."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        self.reading_paused = False
        self.writing_paused = False
        self._read_waiter: asyncio.Future | None = None
        self._drain_waiter: asyncio.Future | None = None

    # -- the transport's callbacks

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > HIGH_WATER and not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake_reader()
        return False  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        if exc is not None and self.error is None:
            self.error = exc
        self._wake_reader()
        self._wake_writer(exc or ConnectionResetError("the connection was closed"))

    def take(self, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` of what was received, reading from the socket again once the buffer is
        below ``LOW_WATER`` (on the transport it was paused on)."""
        data = bytes(self.buffer[:max_bytes])
        del self.buffer[:max_bytes]
        if self.reading_paused and len(self.buffer) < LOW_WATER:
            self.reading_paused = False
            self.transport.resume_reading()
        return data

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._wake_writer(None)

    # -- waiting

    def _wake_reader(self) -> None:
        waiter = self._read_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(True)

    def _wake_writer(self, exc: BaseException | None) -> None:
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            if exc is None:
                waiter.set_result(True)
            else:
                waiter.set_exception(exc)

    async def wait(self, kind: str, timeout: float | None) -> bool:
        """Wait until data (``kind`` "read") or room to write ("drain") comes, or ``timeout`` passes:
        False when it passed."""
        waiter = self._loop.create_future()
        if kind == "read":
            self._read_waiter = waiter
        else:
            self._drain_waiter = waiter
        timer = None if timeout is None else self._loop.call_later(timeout, _expire, waiter)
        try:
            return await waiter
        finally:
            if timer is not None:
                timer.cancel()
            if kind == "read":
                self._read_waiter = None
            else:
                self._drain_waiter = None


def _expire(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_result(False)


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One connection: httpcore's stream interface over an asyncio transport and :class:`_Protocol`."""

    def __init__(self, transport: asyncio.Transport, protocol: _Protocol):
        self._transport = transport
        self._protocol = protocol

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        protocol = self._protocol
        if not protocol.buffer and not protocol.eof:
            if not await protocol.wait("read", timeout) and not protocol.buffer and not protocol.eof:
                raise httpcore.ReadTimeout("no data within the read timeout")
        if protocol.buffer:
            return protocol.take(max_bytes)
        if protocol.error is not None:
            raise httpcore.ReadError(str(protocol.error) or type(protocol.error).__name__)
        return b""  # the server closed the connection

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        protocol = self._protocol
        if self._transport.is_closing():
            raise httpcore.WriteError("the connection is closed")
        self._transport.write(buffer)
        if protocol.writing_paused:
            try:
                if not await protocol.wait("drain", timeout):
                    raise httpcore.WriteTimeout("the data could not be sent within the write timeout")
            except OSError as exc:
                raise httpcore.WriteError(str(exc)) from exc

    async def aclose(self) -> None:
        self._transport.close()
        await asyncio.sleep(0)  # the socket is closed by the loop's next turn: let it happen now

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport = await loop.start_tls(
                    self._transport, self._protocol, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError as exc:
            self._transport.close()
            raise httpcore.ConnectTimeout("the TLS handshake took longer than the connect timeout") from exc
        except (OSError, ssl.SSLError, ConnectionError) as exc:
            self._transport.close()
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        self._protocol.transport = transport  # reading now pauses and resumes on the TLS layer
        return AsyncioStream(transport, self._protocol)

    def get_extra_info(self, info: str):
        if info == "ssl_object":
            return self._transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._transport.get_extra_info("sockname")
        if info == "server_addr":
            return self._transport.get_extra_info("peername")
        if info == "socket":
            return self._transport.get_extra_info("socket")
        if info == "is_readable":  # asked of a kept connection: data or a close there means it is unusable
            protocol = self._protocol
            return bool(protocol.buffer) or protocol.eof or self._transport.is_closing()
        return None


async def _connected(connecting, where: str, timeout: float | None):
    """The (transport, protocol) that ``connecting`` (a loop's ``create_*connection``) opens within
    ``timeout``, its failures as httpcore's connect errors."""
    try:
        async with asyncio.timeout(timeout):
            return await connecting
    except TimeoutError as exc:
        raise httpcore.ConnectTimeout(f"could not connect to {where} within the connect timeout") from exc
    except OSError as exc:
        raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """Connections made on the running asyncio loop (see the module's docstring)."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[tuple] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        local_addr = None if local_address is None else (local_address, 0)
        transport, protocol = await _connected(
            loop.create_connection(lambda: _Protocol(loop), host, port, local_addr=local_addr),
            f"{host}:{port}",
            timeout,
        )
        sock = transport.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return AsyncioStream(transport, protocol)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[tuple] | None = None
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        transport, protocol = await _connected(
            loop.create_unix_connection(lambda: _Protocol(loop), path), path, timeout
        )
        return AsyncioStream(transport, protocol)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
