// The official TypeScript SDK client (@modelcontextprotocol/sdk) against Fleetdeck's /mcp,
// in front of the reference server: connect, list tools, call one, receive progress.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { startFleetdeck, startReferenceServer } from "../support/harness.mjs";

const KEY = "interop-key-0123456789abcdef-abcdefg";
let reference;
let server;

before(async () => {
  reference = await startReferenceServer();
  const { mkdtempSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const fleet = join(mkdtempSync(join(tmpdir(), "fleetdeck-fleet-")), "fleet.toml");
  writeFileSync(
    fleet,
    `[[server]]\nname = "everything"\ntimeout_ms = 20000\n\n  [[server.instance]]\n  id = "everything-1"\n  url = "${reference.url}"\n\n` +
      `[[assistant]]\nname = "sdk"\nkey = "${KEY}"\ntier = "admin"\n`,
  );
  server = await startFleetdeck({ adminPassword: "interop admin password", extraArgs: ["--fleet", fleet] });
});

after(async () => {
  await server?.stop();
  reference?.stop();
});

test("the TypeScript SDK lists, calls and gets progress through the gateway", async () => {
  const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), {
    requestInit: { headers: { Authorization: `Bearer ${KEY}` } },
  });
  const client = new Client({ name: "interop-test", version: "1.0.0" });
  await client.connect(transport);

  const { tools } = await client.listTools();
  const names = tools.map((t) => t.name);
  assert.ok(names.includes("everything__echo"), names.join(", "));
  assert.ok(names.every((n) => n.startsWith("everything__")));

  const echo = await client.callTool({ name: "everything__echo", arguments: { message: "from the sdk" } });
  assert.equal(echo.content[0].text, "Echo: from the sdk");

  const progress = [];
  const long = await client.callTool(
    { name: "everything__trigger-long-running-operation", arguments: { duration: 1, steps: 4 } },
    undefined,
    { onprogress: (p) => progress.push(p) },
  );
  assert.match(long.content[0].text, /completed/);
  assert.ok(progress.length >= 3, `progress notifications: ${JSON.stringify(progress)}`);
  assert.ok(progress.every((p) => p.total === 4));

  // A wrong key is refused before any MCP processing.
  const refused = new Client({ name: "intruder", version: "1.0.0" });
  const badTransport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), {
    requestInit: { headers: { Authorization: "Bearer not-a-valid-key-at-all" } },
  });
  await assert.rejects(refused.connect(badTransport));
  await client.close();
});
