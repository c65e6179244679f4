// The Traces page over a real fleet: the reference MCP server behind a dead instance that
// round-robin sends some calls to first. A retried call's trace is listed with one retry,
// and its waterfall shows two attempt rows, the first failed, with the retry logged.

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
  freePort,
  logIn,
} from "../support/harness.mjs";

const ADMIN_PASSWORD = "e2e traces admin password";
const KEY = "traces-e2e-key-0123456789-abcdefghij";

let reference;
let fleetDir;
let server;
let browser;

before(async () => {
  reference = await startReferenceServer();
  const deadPort = await freePort();
  fleetDir = mkdtempSync(join(tmpdir(), "fleetdeck-traces-"));
  const fleet = join(fleetDir, "fleet.toml");
  writeFileSync(
    fleet,
    [
      "[[server]]",
      'name = "everything"',
      'strategy = "round-robin"',
      "timeout_ms = 10000",
      "retry = { attempts = 2, base_ms = 20, max_ms = 100, budget_ratio = 1.0 }",
      "",
      "  [[server.instance]]",
      '  id = "everything-dead"',
      `  url = "http://127.0.0.1:${deadPort}/mcp"`,
      "",
      "  [[server.instance]]",
      '  id = "everything-live"',
      `  url = "${reference.url}"`,
      "",
      "[[assistant]]",
      'name = "e2e"',
      `key = "${KEY}"`,
      'tier = "admin"',
      "",
    ].join("\n"),
  );
  server = await startFleetdeck({
    adminPassword: ADMIN_PASSWORD,
    extraArgs: ["--fleet", fleet, "--probe-interval-s", "60"],
  });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  reference?.stop();
  if (fleetDir) rmSync(fleetDir, { recursive: true, force: true });
});

test("a retried call shows two attempts in its waterfall, the first failed", async () => {
  const client = new Client({ name: "e2e-traces", version: "1.0.0" });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), {
      requestInit: { headers: { Authorization: `Bearer ${KEY}` } },
    }),
  );
  // Round-robin alternates the first pick: two calls, one of them starts on the dead instance.
  const traceIds = [];
  for (let n = 0; n < 4; n++) {
    const traceId = `e2e0000000000000000000000000000${n}`;
    traceIds.push(traceId);
    const result = await client.callTool({
      name: "everything__echo",
      arguments: { message: `traced ${n}` },
      _meta: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
    });
    assert.notEqual(result.isError, true, JSON.stringify(result));
  }
  await client.close();

  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = watchErrors(page);
  await logIn(page, server.url, "admin", ADMIN_PASSWORD);

  // The list, filtered by tool in the URL: our calls, one of them retried.
  await page.goto(`${server.url}/traces?tool=everything__echo`);
  await hydrated(page);
  await page.waitForSelector("[data-testid=trace-row]");
  assert.equal(await page.inputValue("[data-testid=filter-tool]"), "everything__echo");
  const listed = await page.$$eval("[data-testid=trace-row]", (rows) =>
    rows.map((row) => ({
      id: row.dataset.traceId,
      retries: row.querySelector("[data-testid=trace-retries]").textContent.trim(),
    })),
  );
  for (const id of traceIds) {
    assert.ok(listed.some((row) => row.id === id), `trace ${id} listed: ${JSON.stringify(listed)}`);
  }
  const retried = listed.find((row) => traceIds.includes(row.id) && row.retries === "1");
  assert.ok(retried, `a retried trace: ${JSON.stringify(listed)}`);

  // Applying a filter in the form changes the URL and the rows.
  await page.selectOption("[data-testid=filter-status]", "error");
  await page.click("[data-testid=trace-filters] button[type=submit]");
  await page.waitForURL(/status=error/);
  await page.waitForSelector("[data-testid=traces-empty]");

  // The trace view: two attempt rows, the first failed on the dead instance.
  await page.goto(`${server.url}/traces?tool=everything__echo`);
  await hydrated(page);
  await page.click(`[data-testid=trace-row][data-trace-id="${retried.id}"] [data-testid=trace-link]`);
  await page.waitForURL(`${server.url}/traces/${retried.id}`);
  await page.waitForSelector("[data-testid=waterfall]");
  assert.equal((await page.textContent("[data-testid=trace-id]")).trim(), retried.id);
  const attempts = page.locator("[data-testid=span-row][data-name=attempt]");
  assert.equal(await attempts.count(), 2);
  assert.equal(await attempts.nth(0).getAttribute("data-status"), "error");
  assert.equal(await attempts.nth(1).getAttribute("data-status"), "ok");
  assert.match(await attempts.nth(0).locator("[data-testid=span-label]").textContent(), /everything-dead · breaker \w+/);
  assert.match(await attempts.nth(1).locator("[data-testid=span-label]").textContent(), /everything-live/);
  // The failed row is drawn red.
  const barColor = await attempts.nth(0).locator(".span-bar").evaluate((el) => getComputedStyle(el).fill);
  assert.equal(barColor, "rgb(248, 81, 73)");
  // Opening the failed attempt shows its error and the logged retry.
  await attempts.nth(0).locator("summary").click();
  const details = attempts.nth(0).locator("[data-testid=span-details]");
  await details.waitFor({ state: "visible" });
  assert.match(await details.textContent(), /cannot connect/);
  assert.match(await details.locator("[data-testid=span-events]").textContent(), /retrying after \d+ ms/);
  // The upstream call of the answering attempt is nested under it.
  const calls = page.locator("[data-testid=span-row][data-name=upstream_call]");
  assert.equal(await calls.count(), 2);
  assert.equal(await calls.nth(1).getAttribute("data-depth"), "2");

  // Loaded directly, the server renders the same waterfall and the page hydrates cleanly.
  await page.goto(`${server.url}/traces/${retried.id}`);
  await hydrated(page);
  assert.equal(await page.locator("[data-testid=span-row][data-name=attempt]").count(), 2);
  assert.deepEqual(errors, []);

  // An unknown trace says so in place (the console may report the 404 status, which the
  // streamed page only carries when the lookup finished before the headers went out).
  await page.goto(`${server.url}/traces/${"f".repeat(32)}`);
  await hydrated(page);
  assert.match(await page.textContent("[role=alert]"), /unknown or expired/);
  assert.deepEqual(errors.filter((e) => !e.includes("status of 404")), []);
  await context.close();
});
