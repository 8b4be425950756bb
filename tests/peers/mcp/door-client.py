# Drive Portcullis' MCP door with the official Python MCP client (PyPI `mcp` 2.3, which speaks the
# stateless 2026-07-28 revision), for host/tests/it/mcp_door.rs. `mode="auto"` probes
# `server/discover` and would fall back to `initialize` on a handshake-only server, so the
# protocol version printed says which one the door answered.
#
# Usage: python3 tests/peers/mcp/door-client.py <url of /mcp>
# Env: TOKEN (a bearer token), or CLIENT_ID, CLIENT_SECRET, SCOPE, ISSUER (the SDK's OAuth
# client-credentials provider: 401 -> protected-resource metadata -> authorization server ->
# token for the /mcp resource); CALLS (JSON array of {name, arguments}), PYTHONPATH (where `mcp`
# is installed). Prints one JSON line: {protocolVersion, serverInfo, tools, results: [result |
# {error}]}, or {error} when connecting failed.
import asyncio
import json
import os
import sys

import httpx2
from mcp import Client
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.client.streamable_http import streamable_http_client


class MemoryStorage:
    """Tokens and client information for one run (the SDK's TokenStorage protocol)."""

    def __init__(self) -> None:
        self.tokens = None
        self.client_info = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens) -> None:
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info) -> None:
        self.client_info = client_info


def failure(error: BaseException) -> str:
    # An ExceptionGroup (anyio task groups) says little by itself: name what it holds.
    inner = getattr(error, "exceptions", None)
    if inner:
        return "; ".join(failure(e) for e in inner)
    return f"{type(error).__name__}: {error}"


async def main(url: str) -> None:
    headers = {"Authorization": f"Bearer {os.environ['TOKEN']}"} if os.environ.get("TOKEN") else {}
    auth = None
    if os.environ.get("CLIENT_ID"):
        auth = ClientCredentialsOAuthProvider(
            server_url=url,
            storage=MemoryStorage(),
            client_id=os.environ["CLIENT_ID"],
            client_secret=os.environ["CLIENT_SECRET"],
            scope=os.environ.get("SCOPE"),
            issuer=os.environ.get("ISSUER"),
        )
    calls = json.loads(os.environ.get("CALLS", "[]"))
    out: dict = {}
    try:
        async with httpx2.AsyncClient(headers=headers, auth=auth, timeout=30) as http:
            async with Client(streamable_http_client(url, http_client=http), mode="auto") as client:
                out["protocolVersion"] = client.protocol_version
                info = client.server_info
                out["serverInfo"] = info.model_dump(mode="json") if info else None
                listed = await client.list_tools()
                out["tools"] = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in listed.tools]
                out["results"] = []
                for call in calls:
                    try:
                        result = await client.call_tool(call["name"], call.get("arguments") or {})
                        out["results"].append(result.model_dump(mode="json", by_alias=True, exclude_none=True))
                    except Exception as error:  # noqa: BLE001 - reported to the test
                        out["results"].append({"error": failure(error)})
    except Exception as error:  # noqa: BLE001 - reported to the test
        out["error"] = failure(error)
    print(json.dumps(out))


asyncio.run(main(sys.argv[1]))
