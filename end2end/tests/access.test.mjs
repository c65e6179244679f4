// Access in the browser, checked by a real MCP client: an admin allows a tool on the
// Permissions page and the assistant's very next call (official TypeScript SDK) goes
// through; denying it again refuses the next call. On the Assistants page a new key is
// shown once and works, and revoking it refuses the next request. The Audit page lists the
// calls and keeps its filters in the URL.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
  startFleetdeck,
  startReferenceServer,
  launchChromium,
  watchErrors,
  hydrated,
  logIn,
} from "../support/harness.mjs";

const ADMIN_PASSWORD = "e2e access admin password";
const KEY = "access-e2e-key-0123456789-abcdefghij";

let reference;
let fleetDir;
let server;
let browser;

before(async () => {
  reference = await startReferenceServer();
  fleetDir = mkdtempSync(join(tmpdir(), "fleetdeck-access-"));
  const fleet = join(fleetDir, "fleet.toml");
  // A viewer's default patterns (`read_*`) match none of the reference server's tools.
  writeFileSync(
    fleet,
    `[[server]]\nname = "everything"\ntimeout_ms = 20000\n\n  [[server.instance]]\n  id = "everything-1"\n  url = "${reference.url}"\n\n` +
      `[[assistant]]\nname = "sdk"\nkey = "${KEY}"\ntier = "viewer"\n`,
  );
  server = await startFleetdeck({ adminPassword: ADMIN_PASSWORD, extraArgs: ["--fleet", fleet] });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  reference?.stop();
  if (fleetDir) rmSync(fleetDir, { recursive: true, force: true });
});

async function mcpClient(key) {
  const client = new Client({ name: "fleetdeck-access-e2e", version: "1.0.0" });
  const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), {
    requestInit: { headers: { Authorization: `Bearer ${key}` } },
  });
  await client.connect(transport);
  return client;
}

const echoCell = '[data-assistant="sdk"][data-tool="everything__echo"]';

async function waitForDecision(page, decision, source) {
  await page.waitForSelector(`${echoCell}[data-decision="${decision}"][data-source="${source}"]`, {
    timeout: 15_000,
  });
}

test("a permission toggled on the page applies to the assistant's very next call", async () => {
  const client = await mcpClient(KEY);
  const listed = await client.listTools();
  assert.deepEqual(listed.tools, [], "a viewer sees none of these tools");
  await assert.rejects(
    client.callTool({ name: "everything__echo", arguments: { message: "hi" } }),
    /permission denied.*everything__echo/,
  );

  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = watchErrors(page);
  await logIn(page, server.url, "admin", ADMIN_PASSWORD);
  await page.goto(`${server.url}/permissions`);
  await hydrated(page);
  await waitForDecision(page, "deny", "unmatched");

  await page.getByRole("button", { name: "Allow everything__echo for sdk" }).click();
  await waitForDecision(page, "allow", "explicit");
  // No reload, no wait: the next call sees the change.
  const answer = await client.callTool({ name: "everything__echo", arguments: { message: "now allowed" } });
  assert.match(answer.content[0].text, /now allowed/);
  assert.ok((await client.listTools()).tools.some((t) => t.name === "everything__echo"));

  await page.getByRole("button", { name: "Deny everything__echo for sdk" }).click();
  await waitForDecision(page, "deny", "explicit");
  await assert.rejects(
    client.callTool({ name: "everything__echo", arguments: { message: "denied again" } }),
    /permission denied.*explicit/,
  );

  // Back to the tier's default: the cell says where the decision comes from.
  await page.getByRole("button", { name: "Reset everything__echo for sdk to the tier default" }).click();
  await waitForDecision(page, "deny", "unmatched");

  // The Audit page shows the calls, filtered through the URL. Audit rows are written in
  // batches after the answers, so the page is loaded again until both denials are in.
  const deadline = Date.now() + 15_000;
  for (;;) {
    await page.goto(`${server.url}/audit?kind=calls&assistant=sdk&outcome=denied`);
    await hydrated(page);
    const rows = await page.locator("[data-testid=audit-calls] tr[data-outcome]").count();
    if (rows >= 2) break;
    assert.ok(Date.now() < deadline, `only ${rows} denied calls on the Audit page after 15 s`);
    await page.waitForTimeout(500);
  }
  const outcomes = await page
    .locator("[data-testid=audit-calls] tr[data-outcome]")
    .evaluateAll((rows) => rows.map((row) => row.dataset.outcome));
  assert.ok(outcomes.every((outcome) => outcome === "denied"), outcomes.join(","));
  const csv = await page.locator("[data-testid=download-csv]").getAttribute("href");
  assert.match(csv, /assistant=sdk/);
  assert.match(csv, /outcome=denied/);

  await client.close();
  assert.deepEqual(errors, []);
  await context.close();
});

test("a key issued on the Assistants page is shown once, works, and is refused once revoked", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = watchErrors(page);
  await logIn(page, server.url, "admin", ADMIN_PASSWORD);
  await page.goto(`${server.url}/assistants`);
  await hydrated(page);
  await page.locator("[data-testid=issue-key-sdk]").click();
  const issued = page.locator("[data-testid=issued-key]");
  await issued.waitFor();
  const key = (await issued.textContent()).trim();
  assert.match(key, /^fdk_[A-Za-z0-9]{40}$/);

  const client = await mcpClient(key);
  await client.listTools();

  // The key is not shown again after a reload; its prefix is listed.
  await page.reload();
  await hydrated(page);
  assert.equal(await page.locator("[data-testid=issued-key]").count(), 0);
  const prefix = key.slice(0, 10);
  await page.getByRole("button", { name: `Revoke key ${prefix}… of sdk` }).click();
  await page.locator("[data-testid=confirm]").click();
  await page.locator(".revoked", { hasText: prefix }).first().waitFor({ timeout: 15_000 });

  await assert.rejects(client.listTools(), /401|revoked|Unauthorized/i);
  assert.deepEqual(errors, []);
  await context.close();
});
