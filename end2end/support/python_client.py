"""The official Python MCP SDK client against Fleetdeck's /mcp, in both protocol eras.

Usage: python_client.py <gateway>/mcp <key>. Prints one JSON summary on stdout; the node
test (tests/interop_python_inspector.test.mjs) asserts on it. Checks are left to the test
so that a failure shows everything the client saw.
"""

import asyncio
import json
import sys
import traceback

import httpx2
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp.types import Implementation


def http_client(key: str, statuses: list[int]) -> httpx2.AsyncClient:
    async def record(response: httpx2.Response) -> None:
        statuses.append(response.status_code)

    # The SDK's default timeouts: 30 s, 300 s to read a held-open stream.
    return httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {key}"},
        timeout=httpx2.Timeout(30, read=300),
        event_hooks={"response": [record]},
    )


def texts(result) -> list[str]:
    return [c.text for c in result.content if c.type == "text"]


async def session(url: str, key: str, mode: str) -> dict:
    statuses: list[int] = []
    out: dict = {"mode": mode}
    async with http_client(key, statuses) as http:
        async with Client(
            streamable_http_client(url, http_client=http),
            mode=mode,
            client_info=Implementation(name="fleetdeck-interop-python", version="1.0.0"),
            read_timeout_seconds=60,
        ) as client:
            out["protocol_version"] = client.protocol_version
            out["server_info"] = client.server_info.name if client.server_info else None

            names, cursor = [], None
            while True:
                page = await client.list_tools(cursor=cursor)
                names += [t.name for t in page.tools]
                cursor = page.next_cursor
                if cursor is None:
                    break
            out["tools"] = names

            echo = await client.call_tool("everything__echo", {"message": "from python"})
            out["echo"] = {"is_error": echo.is_error, "texts": texts(echo)}

            progress = []

            async def on_progress(value: float, total: float | None, message: str | None) -> None:
                progress.append({"progress": value, "total": total, "message": message})

            long = await client.call_tool(
                "everything__trigger-long-running-operation",
                {"duration": 1, "steps": 4},
                progress_callback=on_progress,
            )
            out["long"] = {"is_error": long.is_error, "texts": texts(long), "progress": progress}

            # Schema mismatches come back as isError results (SEP-1303), not -32602 errors.
            out["invalid"] = {}
            for label, arguments in (("number", {"message": 42}), ("missing", {})):
                try:
                    bad = await client.call_tool("everything__echo", arguments)
                    out["invalid"][label] = {"is_error": bad.is_error, "texts": texts(bad)}
                except MCPError as error:
                    out["invalid"][label] = {"mcp_error": {"code": error.code, "message": error.error.message}}
    out["http_statuses"] = statuses
    return out


async def wrong_key(url: str) -> dict:
    statuses: list[int] = []
    try:
        async with http_client("not-a-valid-key-at-all", statuses) as http:
            async with Client(streamable_http_client(url, http_client=http), mode="auto") as client:
                await client.list_tools()
        return {"refused": False, "http_statuses": statuses}
    except Exception as error:  # noqa: BLE001 - any failure to connect counts as refused
        return {"refused": True, "error": repr(error)[:300], "http_statuses": statuses}


async def main(url: str, key: str) -> dict:
    summary: dict = {}
    # legacy: the initialize handshake (2025-11-25); auto: server/discover, then 2026-07-28.
    for mode in ("legacy", "auto"):
        try:
            summary[mode] = await session(url, key, mode)
        except Exception as error:  # noqa: BLE001 - report, let the test fail with it
            summary[mode] = {"exception": "".join(traceback.format_exception(error))[-3000:]}
    summary["wrong_key"] = await wrong_key(url)
    return summary


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2])), indent=2))
