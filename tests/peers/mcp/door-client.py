# Drive Portcullis' MCP door with the official Python MCP client (PyPI `mcp` 2.3, which speaks the
# stateless 2026-07-28 revision), for host/tests/it/mcp_door.rs. `mode="auto"` probes
# `server/discover` and would fall back to `initialize` on a handshake-only server, so the
# protocol version printed says which one the door answered.
#
# Usage: python3 tests/peers/mcp/door-client.py <url of /mcp>
# Env: TOKEN (a bearer token), CALLS (JSON array of {name, arguments}), PYTHONPATH (where `mcp`
# is installed). Prints one JSON line: {protocolVersion, serverInfo, tools, results: [...]}.
import asyncio
import json
import os
import sys

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


async def main(url: str) -> None:
    headers = {"Authorization": f"Bearer {os.environ['TOKEN']}"} if os.environ.get("TOKEN") else {}
    calls = json.loads(os.environ.get("CALLS", "[]"))
    out: dict = {}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
        async with Client(streamable_http_client(url, http_client=http), mode="auto") as client:
            out["protocolVersion"] = client.protocol_version
            info = client.server_info
            out["serverInfo"] = info.model_dump(mode="json") if info else None
            listed = await client.list_tools()
            out["tools"] = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in listed.tools]
            out["results"] = []
            for call in calls:
                result = await client.call_tool(call["name"], call.get("arguments") or {})
                out["results"].append(result.model_dump(mode="json", by_alias=True, exclude_none=True))
    print(json.dumps(out))


asyncio.run(main(sys.argv[1]))
