// `fleetdeck demo` as a new user sees it: the demo fleet behind the gateway with synthetic
// traffic. An operator drains an instance from the Fleet page and watches it reach drained
// while the traffic keeps succeeding; then an admin adds and removes an instance.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { startFleetdeck, launchChromium, watchErrors, hydrated } from "../support/harness.mjs";

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
  await page.goto(`${server.url}/login?next=/fleet`);
  await hydrated(page);
  await page.fill("input[name=username]", "admin");
  await page.fill("input[name=password]", ADMIN_PASSWORD);
  await page.click("button[type=submit]");
  await page.waitForURL(`${server.url}/fleet`);
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
