// `fleetdeck demo` as a new user sees it: the demo fleet behind the gateway with synthetic
// traffic. An operator drains an instance from the Fleet page and watches it reach drained
// while the traffic keeps succeeding; then an admin adds and removes an instance.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { startFleetdeck, launchChromium, watchErrors, hydrated, logIn } from "../support/harness.mjs";

const ADMIN_PASSWORD = "e2e demo admin password";
let server;
let browser;

before(async () => {
  server = await startFleetdeck({ adminPassword: ADMIN_PASSWORD, command: "demo", extraArgs: ["--traffic", "20"] });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const number = async (page, testId) => Number((await page.textContent(`[data-testid=${testId}]`)).trim());

test("drain an instance from the Fleet page while the demo traffic keeps succeeding", async () => {
  assert.ok(existsSync(join(server.dataDir, "demo-key")), "the demo wrote its assistant key");
  assert.match(readFileSync(join(server.dataDir, "demo-key"), "utf8"), /^fdk_[A-Za-z0-9]{40}\n$/);

  const page = await (await browser.newContext()).newPage();
  const errors = watchErrors(page);
  await logIn(page, server.url, "admin", ADMIN_PASSWORD, "/fleet");
  await hydrated(page);

  // The traffic is flowing: search-2 and search-3 count calls.
  await page.waitForFunction(() => Number(document.querySelector("[data-testid=calls-search-2]")?.textContent) > 0, null, { timeout: 20_000 });

  await page.click("[data-testid=drain-search-1]");
  await page.click("[data-testid=confirm]");
  await page.waitForSelector("[data-testid=action-result]");
  await page.waitForFunction(
    () => document.querySelector("[data-testid=admin-search-1]")?.textContent.trim() === "drained",
    null,
    { timeout: 15_000 },
  );
  const drainedCalls = await number(page, "calls-search-1");
  const othersBefore = (await number(page, "calls-search-2")) + (await number(page, "calls-search-3"));

  // Three more seconds of traffic: the others take it all, nothing fails.
  await page.waitForTimeout(3000);
  const othersAfter = (await number(page, "calls-search-2")) + (await number(page, "calls-search-3"));
  assert.ok(othersAfter > othersBefore, `traffic kept flowing: ${othersBefore} → ${othersAfter}`);
  assert.equal(await number(page, "calls-search-1"), drainedCalls, "no call reached the drained instance");
  for (const id of ["search-1", "search-2", "search-3", "database-1", "database-2", "files-1", "files-2", "notifications-1", "notifications-2"]) {
    assert.equal(await number(page, `failures-${id}`), 0, `${id} has no failed calls`);
  }

  // Undrain, then add an instance and remove it again (admins).
  await page.click("[data-testid=undrain-search-1]");
  await page.click("[data-testid=confirm]");
  await page.waitForFunction(() => document.querySelector("[data-testid=admin-search-1]")?.textContent.trim() === "active");
  await page.selectOption("[data-testid=instances-admin] select[name=server]", "files");
  await page.fill("[data-testid=instances-admin] input[name=id]", "files-extra");
  await page.fill("[data-testid=instances-admin] input[name=url]", "http://127.0.0.1:9/mcp");
  await page.click("[data-testid=instances-admin] button[type=submit]");
  await page.waitForSelector("[data-testid=instance-files-extra]");
  await page.click("[data-testid=remove-files-extra]");
  await page.waitForFunction(() => !document.querySelector("[data-testid=instance-files-extra]"), null, { timeout: 10_000 });

  assert.deepEqual(errors, [], "no errors in the page");
});

test("the Overview shows the demo fleet at a glance, with live charts drawn on the server", async () => {
  const page = await (await browser.newContext()).newPage();
  const errors = watchErrors(page);
  await logIn(page, server.url, "admin", ADMIN_PASSWORD);
  await hydrated(page);

  // Probes find every demo instance healthy; the traffic shows as calls per second.
  await page.waitForFunction(
    () => /^(\d+) \/ \1 healthy$/.test(document.querySelector("[data-testid=instances-healthy]")?.textContent.trim() ?? ""),
    null,
    { timeout: 30_000 },
  );
  await page.waitForFunction(() => parseFloat(document.querySelector("[data-testid=calls-per-s]")?.textContent) > 0, null, { timeout: 20_000 });
  const servers = await page.$$eval("[data-testid=server-glance] tbody tr", (rows) => rows.map((r) => r.dataset.server));
  assert.deepEqual(servers, ["database", "files", "notifications", "search"]);
  const searchCalls = Number(await page.textContent("[data-testid=server-glance] tr[data-server=search] td:nth-child(5)"));
  assert.ok(searchCalls > 0, `search served calls in the window: ${searchCalls}`);

  // The three charts are SVG images the server drew from the per-minute series, with lines.
  for (const kind of ["latency", "calls", "hit-rate"]) {
    const img = page.locator(`[data-testid=overview-charts] [data-testid=chart-${kind}]`);
    await page.waitForFunction((el) => el.complete && el.naturalWidth > 0, await img.elementHandle(), { timeout: 10_000 });
    const src = await img.getAttribute("src");
    const chart = await page.evaluate(async (url) => {
      const response = await fetch(url);
      return { type: response.headers.get("content-type"), body: await response.text() };
    }, src);
    assert.equal(chart.type, "image/svg+xml", kind);
    assert.match(chart.body, /<polyline/, `${kind} has a line`);
    // Drawn in the dashboard's dark theme (its panel colour), not on white.
    assert.match(chart.body, /fill="#172029"/i, `${kind} on the panel colour`);
  }

  // The demo stored ROI inputs for its servers on its first start: the ROI page has
  // figures and a ranking of all four servers from the start, not "no inputs yet".
  await page.goto(`${server.url}/roi`);
  await hydrated(page);
  await page.waitForSelector("[data-testid=roi-ranking]");
  const ranked = await page.$$eval("[data-testid=roi-ranking] tbody tr", (rows) => rows.map((r) => r.dataset.server).sort());
  assert.deepEqual(ranked, ["database", "files", "notifications", "search"]);
  assert.equal(await page.locator("[data-testid=roi-no-inputs]").count(), 0);

  // The Fleet page shows what the prober scraped from each instance's own /metrics.
  await page.goto(`${server.url}/fleet`);
  await hydrated(page);
  await page.waitForFunction(() => /mem \d+ MiB/.test(document.querySelector("[data-testid=load-search-2]")?.textContent ?? ""), null, {
    timeout: 20_000,
  });
  assert.match(await page.textContent("[data-testid=health-reason-search-2]"), /^ping /);

  assert.deepEqual(errors, [], "no errors in the page");
});
