// Two replicas sharing one PostgreSQL schema, seen from the browser: a login on replica A
// is a login on replica B (the session lives in the database); an admin drains an instance
// on A and B's Fleet page, open on a wall screen, shows it drained within a second without a
// reload; B's Overview counts the change it applied from another replica.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import {
  startFleetdeck,
  launchChromium,
  watchErrors,
  hydrated,
  logIn,
  startReferenceServer,
} from "../support/harness.mjs";

const ADMIN_PASSWORD = "e2e replicas admin password";
const POSTGRES = process.env.FLEETDECK_TEST_POSTGRES_URL || "postgres://postgres@127.0.0.1:5432/test";
const SCHEMA = `fde2e_${process.pid}_${Date.now()}`;
const FIRST = "everything-1";
const SECOND = "everything-2";

let reference;
let fleetDir;
let replicaA;
let replicaB;
let browser;

/** Runs one statement on the test database. */
async function sql(text) {
  const client = new pg.Client({ connectionString: POSTGRES });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

before(async () => {
  await sql(`CREATE SCHEMA "${SCHEMA}"`);
  reference = await startReferenceServer();
  fleetDir = mkdtempSync(join(tmpdir(), "fleetdeck-replicas-"));
  const fleet = join(fleetDir, "fleet.toml");
  // Two instances of one server (both on the reference server: only routing matters here).
  writeFileSync(
    fleet,
    [
      "[[server]]",
      'name = "everything"',
      "",
      "  [[server.instance]]",
      `  id = "${FIRST}"`,
      `  url = "${reference.url}"`,
      "",
      "  [[server.instance]]",
      `  id = "${SECOND}"`,
      `  url = "${reference.url}"`,
      "",
    ].join("\n"),
  );
  const database = `${POSTGRES}?options=-c%20search_path%3D${SCHEMA}`;
  const args = ["--fleet", fleet, "--probe-interval-s", "1", "--database-url", database];
  // One after the other: the second finds the schema migrated and the admin created.
  replicaA = await startFleetdeck({ adminPassword: ADMIN_PASSWORD, extraArgs: args });
  replicaB = await startFleetdeck({ adminPassword: ADMIN_PASSWORD, extraArgs: args });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await replicaA?.stop();
  await replicaB?.stop();
  await reference?.stop();
  if (fleetDir) rmSync(fleetDir, { recursive: true, force: true });
  await sql(`DROP SCHEMA IF EXISTS "${SCHEMA}" CASCADE`);
});

/**
 * Clicks the element in the page's own event loop. The Fleet page rebuilds its rows on every
 * refresh (each second): on a busy machine Playwright may never see the button stable.
 */
async function clickNow(page, selector) {
  await page.waitForSelector(selector);
  await page.evaluate((sel) => document.querySelector(sel).click(), selector);
}

/** Waits until the element with this test id reads `text`. */
async function waitForText(page, testId, text, timeout = 15_000) {
  await page.waitForFunction(
    ([id, want]) => document.querySelector(`[data-testid="${id}"]`)?.textContent?.trim() === want,
    [testId, text],
    { timeout },
  );
}

test("a drain on one replica shows on the other's open Fleet page within a second", async (t) => {
  // One browser context: cookies are per host, not port, so the session cookie replica A
  // sets is the one replica B receives.
  const context = await browser.newContext();
  const onA = await context.newPage();
  const onB = await context.newPage();
  const errors = [watchErrors(onA), watchErrors(onB)];

  await logIn(onA, replicaA.url, "admin", ADMIN_PASSWORD);
  // No login on B: A's session is valid there.
  await onB.goto(`${replicaB.url}/fleet`);
  await hydrated(onB);
  assert.equal(new URL(onB.url()).pathname, "/fleet", "B did not send the user to log in");
  await waitForText(onB, `admin-${FIRST}`, "active");
  // The event stream of B's page is open before anything changes.
  await waitForText(onB, `health-${FIRST}`, "healthy", 30_000);

  await onA.goto(`${replicaA.url}/fleet`);
  await hydrated(onA);
  await waitForText(onA, `health-${FIRST}`, "healthy", 30_000);
  await clickNow(onA, `[data-testid="drain-${FIRST}"]`);
  await clickNow(onA, "[data-testid=confirm]");
  const result = onA.locator(`[data-testid="instance-${FIRST}"] [data-testid=action-result]`);
  await result.waitFor();
  const drainedAt = Date.now();
  assert.equal((await result.textContent()).trim(), `${FIRST}: active → drained`);

  // B applies it from the database's notification and its page updates live.
  await waitForText(onB, `admin-${FIRST}`, "drained", 5_000);
  const elapsed = Date.now() - drainedAt;
  t.diagnostic(`replica B showed the drain ${elapsed} ms after replica A confirmed it`);
  assert.ok(elapsed <= 1_000, `B showed the drain after ${elapsed} ms`);
  assert.equal((await onB.textContent(`[data-testid="admin-${SECOND}"]`)).trim(), "active");

  // B's Overview: PostgreSQL, and at least this one change applied from another replica.
  await onB.goto(`${replicaB.url}/`);
  await hydrated(onB);
  const feed = (await onB.textContent("[data-testid=change-feed]")).trim();
  assert.match(feed, /^[1-9]\d* applied$/, feed);
  const [idA, idB] = [
    await (async () => {
      await onA.goto(`${replicaA.url}/`);
      await hydrated(onA);
      return (await onA.textContent("[data-testid=replica-id]")).trim();
    })(),
    (await onB.textContent("[data-testid=replica-id]")).trim(),
  ];
  assert.notEqual(idA, idB, "each replica has its own id");

  // Undrain on B this time: A follows.
  await onB.goto(`${replicaB.url}/fleet`);
  await hydrated(onB);
  await onA.goto(`${replicaA.url}/fleet`);
  await hydrated(onA);
  await waitForText(onA, `admin-${FIRST}`, "drained");
  await clickNow(onB, `[data-testid="undrain-${FIRST}"]`);
  await clickNow(onB, "[data-testid=confirm]");
  await onB.locator(`[data-testid="instance-${FIRST}"] [data-testid=action-result]`).waitFor();
  await waitForText(onA, `admin-${FIRST}`, "active", 5_000);

  for (const seen of errors) assert.deepEqual(seen, [], "no console errors");
  await context.close();
});

test("a session is the database's: valid on both replicas until a logout on either", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await logIn(page, replicaB.url, "admin", ADMIN_PASSWORD);
  const cookies = await context.cookies(replicaB.url);
  assert.ok(cookies.length > 0, "B set a session cookie");

  // The same cookie, in another browser, on replica A: logged in.
  const other = await browser.newContext();
  await other.addCookies(cookies);
  const onA = await other.newPage();
  await onA.goto(`${replicaA.url}/fleet`);
  await hydrated(onA);
  assert.equal(new URL(onA.url()).pathname, "/fleet");

  // Log out on B: the session row is deleted, so A refuses the cookie too.
  await page.goto(`${replicaB.url}/fleet`);
  await hydrated(page);
  await page.click("[data-testid=logout]");
  await page.waitForURL((url) => url.pathname === "/login");
  await onA.goto(`${replicaA.url}/fleet`);
  assert.equal(new URL(onA.url()).pathname, "/login");

  await other.close();
  await context.close();
});
