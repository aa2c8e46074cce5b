"""
An asyncio streams server: C{asyncio.start_server} and C{readline()}.

Each line read is appended to the output file with one (blocking,
unbuffered) write.  C{start_server}'s default backlog of 100 stands.

    python asyncio_streams.py --port PORT --output FILE
"""

import argparse
import asyncio
from typing import BinaryIO


async def serve(port: int, out: BinaryIO) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        print("Got connection from", writer.get_extra_info("peername"))
        while True:
            line = await reader.readline()
            if not line:
                break
            out.write(line)
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    with open(args.output, "ab", buffering=0) as out:
        asyncio.run(serve(args.port, out))


if __name__ == "__main__":
    main()
