"""Network delay in user space, for kernels without netem (tests/bench/lib/lab.sh).

Listens on each LISTEN address and forwards every connection to the matching
TARGET address, holding each chunk of data DELAY_MS milliseconds in each
direction (and the connection's start one DELAY_MS), in order: a round trip
through it takes twice DELAY_MS more. Loopback addresses only.

Usage: delay_proxy.py DELAY_MS READY_FILE OWNER_PID LISTEN=TARGET...
(addresses as IP:PORT). Writes READY_FILE once it listens; runs until killed or
until OWNER_PID exits.
"""

import asyncio
import ipaddress
import os
import sys
import time


def address(text):
    host, port = text.rsplit(":", 1)
    if not ipaddress.IPv4Address(host).is_loopback:
        sys.exit("only loopback addresses: %s" % text)
    return host, int(port)


async def pump(reader, writer, delay):
    """Copy reader to writer, each chunk delay seconds late, in order."""
    queue = asyncio.Queue()

    async def read():
        while True:
            data = await reader.read(65536)
            queue.put_nowait((time.monotonic() + delay, data))
            if not data:
                return

    async def write():
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    try:
        await asyncio.gather(read(), write())
    except (ConnectionError, OSError):
        pass


async def handle(client_reader, client_writer, target, delay):
    try:
        await asyncio.sleep(delay)
        server_reader, server_writer = await asyncio.open_connection(*target)
    except OSError:
        client_writer.close()
        return
    await asyncio.gather(
        pump(client_reader, server_writer, delay),
        pump(server_reader, client_writer, delay),
    )
    for writer in (client_writer, server_writer):
        writer.close()


async def main():
    delay = float(sys.argv[1]) / 1000
    ready, owner = sys.argv[2], int(sys.argv[3])
    servers = []
    for pair in sys.argv[4:]:
        listen, target = (address(part) for part in pair.split("="))
        servers.append(
            await asyncio.start_server(
                lambda r, w, t=target: handle(r, w, t, delay), *listen, backlog=512
            )
        )
    with open(ready, "w"):
        pass
    while True:
        await asyncio.sleep(1)
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            return


asyncio.run(main())
