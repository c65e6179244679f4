// Log in, see the Overview rendered on the server and hydrated in the browser, watch a live
// value change and toggle it without a reload, navigate client-side, log out.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startFleetdeck, launchChromium, watchErrors, hydrated } from "../support/harness.mjs";

const ADMIN_PASSWORD = "e2e admin password";
let server;
let browser;

before(async () => {
  server = await startFleetdeck({ adminPassword: ADMIN_PASSWORD });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test("log in, see the hydrated Overview change live, log out", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = watchErrors(page);

  // Anonymous: the Overview sends us to the login page.
  await page.goto(`${server.url}/`);
  assert.match(new URL(page.url()).pathname, /^\/login$/);
  await hydrated(page);

  // A wrong password is refused in place, with the one message for every failure.
  await page.fill("input[name=username]", "admin");
  await page.fill("input[name=password]", "not the password");
  await page.click("button[type=submit]");
  await page.waitForSelector("[data-testid=login-error]");
  assert.equal(await page.textContent("[data-testid=login-error]"), "unknown user or wrong password");

  // The right one lands on the Overview.
  await page.fill("input[name=password]", ADMIN_PASSWORD);
  await page.click("button[type=submit]");
  await page.waitForURL(`${server.url}/`);
  await page.waitForSelector("h1:text('Overview')");
  await page.waitForSelector("[data-testid=who]");
  assert.match(await page.textContent("[data-testid=who]"), /admin/);

  // Server-rendered on a fresh load, then hydrated.
  await page.reload();
  await hydrated(page);
  await page.evaluate(() => { window.__sameDocument = true; });

  // A live value changes without a reload: the polled clock moves on.
  const asOf = await page.textContent("[data-testid=as-of]");
  await page.waitForFunction(
    (before) => document.querySelector("[data-testid=as-of]")?.textContent !== before,
    asOf,
    { timeout: 15_000 },
  );

  // A click changes the page in place.
  const toggle = page.locator("[data-testid=live-toggle]");
  assert.equal(await toggle.textContent(), "Pause live updates");
  await toggle.click();
  assert.equal(await toggle.textContent(), "Resume live updates");
  assert.equal(await toggle.getAttribute("aria-pressed"), "false");

  // Client-side navigation to Users, still the same document.
  await page.click("nav >> text=Users");
  await page.waitForURL(`${server.url}/users`);
  await page.waitForSelector("[data-testid=users] >> text=admin");
  assert.equal(await page.evaluate(() => window.__sameDocument), true, "no full reload happened");

  // Log out: back to the login page, and the Overview is closed again.
  await page.click("[data-testid=logout]");
  await page.waitForURL(/\/login$/);
  await page.goto(`${server.url}/`);
  assert.match(new URL(page.url()).pathname, /^\/login$/);

  const expected = "the server responded with a status of 401"; // the refused login above
  assert.deepEqual(errors.filter((e) => !e.includes(expected)), [], "no errors in the page");
  await context.close();
});
