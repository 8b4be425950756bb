"""A streamable-HTTP MCP server built with the official Python SDK (PyPI `mcp` 2.3), which speaks
the stateless 2026-07-28 revision (`server/discover`, per-request `_meta`, `Mcp-Method` and
`Mcp-Name` headers checked against the body, no session) and the older revisions. Runs in
stateless mode on 127.0.0.1:$PORT, path /mcp; `tools/list` results carry the `ttlMs` cache hint
$TTL_MS (default 60000).
Every header the server received on a `tools/call` is echoed back by the `headers` tool."""

import json
import os

from mcp.server.caching import CacheHint
from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("stateless-test", cache_hints={"tools/list": CacheHint(ttl_ms=int(os.environ.get("TTL_MS", "60000")), scope="private")})


@server.tool()
def add(a: int, b: int) -> int:
    """Adds two numbers"""
    return a + b


@server.tool()
def headers(ctx: Context) -> str:
    """Returns the MCP routing headers of the request that called it"""
    request = ctx.request_context.request
    seen = {k: v for k, v in request.headers.items() if k.startswith("mcp-")} if request else {}
    return json.dumps(seen, sort_keys=True)


server.run("streamable-http", host="127.0.0.1", port=int(os.environ["PORT"]), stateless_http=True, json_response=True)
