// ROI over real measured calls: an assistant calls the reference server's tools through the
// gateway with the official SDK client; the ROI page counts the successful calls, an admin
// sets the server's inputs and the page shows the numbers the formula gives for them
// (computed here from the inputs and the calls made); a bad input is refused with a
// message in place; a viewer reads the report but may not change it; the CSV has the same
// figures; the planning mode computes a proposed server.

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

const ADMIN_PASSWORD = "e2e roi admin password";
const KEY = "roi-e2e-key-0123456789-abcdefghijklm";
const DAYS_PER_MONTH = 30.44;
const ECHO_CALLS = 4;
const SUM_CALLS = 2;

let reference;
let fleetDir;
let server;
let browser;

before(async () => {
  reference = await startReferenceServer();
  fleetDir = mkdtempSync(join(tmpdir(), "fleetdeck-roi-"));
  const fleet = join(fleetDir, "fleet.toml");
  writeFileSync(
    fleet,
    `[[server]]\nname = "everything"\ntimeout_ms = 20000\n\n  [[server.instance]]\n  id = "everything-1"\n  url = "${reference.url}"\n\n` +
      `[[assistant]]\nname = "sdk"\nkey = "${KEY}"\ntier = "admin"\n`,
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

/** Rounds half away from zero, then groups thousands: what the page shows. */
function grouped(value, decimals) {
  const scale = 10 ** decimals;
  const rounded = (Math.sign(value) * Math.round(Math.abs(value) * scale)) / scale;
  const [whole, fraction] = Math.abs(rounded).toFixed(decimals).split(".");
  const withCommas = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${rounded < 0 ? "-" : ""}${withCommas}${fraction ? `.${fraction}` : ""}`;
}

/** The seeds' formula over measured uses per tool (calls made less than a day ago count
 * over one day, projected to a month of 30.44 days). */
function expected({ hours, rate, currency, defaultMinutes, months, toolMinutes, calls }) {
  let usesPerMonth = 0;
  let hoursSaved = 0;
  for (const [tool, count] of Object.entries(calls)) {
    const perMonth = (count * DAYS_PER_MONTH) / 1;
    usesPerMonth += perMonth;
    hoursSaved += (perMonth * (toolMinutes[tool] ?? defaultMinutes)) / 60;
  }
  const cost = hours * rate;
  const monthly = hoursSaved * rate;
  const total = monthly * months;
  return {
    "uses-per-month": grouped(usesPerMonth, 1),
    "development-cost": `${grouped(cost, 2)} ${currency}`,
    "monthly-value": `${grouped(monthly, 2)} ${currency}`,
    "total-value": `${grouped(total, 2)} ${currency}`,
    "roi-percent": `${grouped(((total - cost) / cost) * 100, 1)} %`,
    "break-even": `${grouped(cost / monthly, 1)} months`,
    roiCsv: (((total - cost) / cost) * 100).toFixed(2),
  };
}

async function mcpClient() {
  const client = new Client({ name: "fleetdeck-roi-e2e", version: "1.0.0" });
  const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), {
    requestInit: { headers: { Authorization: `Bearer ${KEY}` } },
  });
  await client.connect(transport);
  return client;
}

const card = '[data-testid="server-everything"]';

/** Reloads the ROI page until the echo tool shows `count` successful calls (the audit log
 * is written in batches). */
async function waitForUses(page, count) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    await page.goto(`${server.url}/roi?window=30`);
    await hydrated(page);
    const cell = page.locator(`${card} [data-testid="tool-echo"] [data-testid=tool-uses]`);
    if ((await cell.count()) > 0 && (await cell.textContent()).trim() === String(count)) return;
    if (Date.now() > deadline) throw new Error(`echo never showed ${count} uses`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

async function figure(page, testId) {
  return (await page.locator(`${card} [data-testid="${testId}"]`).first().textContent()).trim();
}

async function setInput(page, name, value) {
  await page.fill(`${card} [data-testid="input-${name}"]`, value);
}

test("measured calls and an admin's inputs give the formula's numbers; bad input is refused in place", async () => {
  const client = await mcpClient();
  for (let i = 0; i < ECHO_CALLS; i++) {
    const answer = await client.callTool({ name: "everything__echo", arguments: { message: `roi ${i}` } });
    assert.match(answer.content[0].text, new RegExp(`roi ${i}`));
  }
  for (let i = 0; i < SUM_CALLS; i++) {
    await client.callTool({ name: "everything__get-sum", arguments: { a: i, b: 2 } });
  }
  // Not a use: an unknown tool is rejected.
  await assert.rejects(client.callTool({ name: "everything__no-such-tool", arguments: {} }));
  await client.close();

  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = watchErrors(page);
  await logIn(page, server.url, "admin", ADMIN_PASSWORD);
  await waitForUses(page, ECHO_CALLS);
  assert.equal(
    (await page.textContent(`${card} [data-testid="tool-get-sum"] [data-testid=tool-uses]`)).trim(),
    String(SUM_CALLS),
  );
  assert.match(await page.textContent(`${card} [data-testid=uses-measured]`), /No ROI inputs yet/);

  const inputs = {
    hours: 10,
    rate: 80,
    currency: "EUR",
    defaultMinutes: 6,
    months: 12,
    toolMinutes: { echo: 3 },
    calls: { echo: ECHO_CALLS, "get-sum": SUM_CALLS },
  };
  await setInput(page, "development_hours", String(inputs.hours));
  await setInput(page, "hourly_rate", String(inputs.rate));
  await setInput(page, "currency", "eur");
  await setInput(page, "default_minutes_saved", String(inputs.defaultMinutes));
  await setInput(page, "months", String(inputs.months));
  await setInput(page, "minutes-echo", String(inputs.toolMinutes.echo));
  await page.click(`${card} [data-testid=save-inputs]`);
  await page.waitForSelector("[data-testid=roi-saved]", { timeout: 15_000 });

  const want = expected(inputs);
  for (const testId of ["uses-per-month", "development-cost", "monthly-value", "total-value", "roi-percent", "break-even"]) {
    await page.waitForFunction(
      ([selector, text]) => document.querySelector(selector)?.textContent.trim() === text,
      [`${card} [data-testid="${testId}"]`, want[testId]],
      { timeout: 15_000 },
    ).catch(async () => {
      assert.equal(await figure(page, testId), want[testId], testId);
    });
  }
  assert.equal((await page.textContent('[data-testid="rank-everything"] td')).trim(), "1");
  // The fleet's totals (one server) show the same ROI, and both charts are drawn.
  assert.equal((await page.textContent('[data-testid="fleet-EUR"] [data-testid="roi-percent"]')).trim(), want["roi-percent"]);
  assert.equal(await page.locator(`${card} figure.roi-chart svg`).count(), 1);
  assert.equal(await page.locator('[data-testid="fleet-EUR"] figure.roi-chart svg').count(), 1);

  // A negative value is refused, in place, naming the field; nothing changes.
  await setInput(page, "development_hours", "-5");
  await page.click(`${card} [data-testid=save-inputs]`);
  const refusal = page.locator(`${card} [data-testid=inputs-error]`);
  await refusal.waitFor({ timeout: 15_000 });
  assert.match(await refusal.textContent(), /development hours: must not be negative \(got -5\)/);
  await setInput(page, "development_hours", String(inputs.hours));
  await setInput(page, "months", "121");
  await page.click(`${card} [data-testid=save-inputs]`);
  await page.waitForFunction(
    (selector) => /months to evaluate: must be a whole number from 1 to 120/.test(document.querySelector(selector)?.textContent ?? ""),
    `${card} [data-testid=inputs-error]`,
    { timeout: 15_000 },
  );
  await page.reload();
  await hydrated(page);
  assert.equal(await figure(page, "roi-percent"), want["roi-percent"]);

  // The CSV carries the same figures; anonymous requests are refused.
  const csv = await context.request.get(`${server.url}/api/roi.csv?window=30`);
  assert.equal(csv.status(), 200);
  const serverRow = (await csv.text()).split("\r\n").find((line) => line.startsWith("server,everything,"));
  assert.ok(serverRow, "a row for the server");
  assert.ok(serverRow.includes(`,${want.roiCsv},`), `${serverRow} has ROI ${want.roiCsv}`);
  const anonymous = await fetch(`${server.url}/api/roi.csv`);
  assert.equal(anonymous.status, 401);

  // The planning mode: 5 people × 20 uses × 6 minutes at 100/h for 40 hours.
  await page.fill("[data-testid=plan-name]", "tickets");
  await page.fill("[data-testid=plan-development_hours]", "40");
  await page.fill("[data-testid=plan-hourly_rate]", "100");
  await page.fill("[data-testid=plan-minutes_saved]", "6");
  await page.fill("[data-testid=plan-uses_per_person]", "20");
  await page.fill("[data-testid=plan-team_size]", "5");
  await page.click("[data-testid=plan-submit]");
  await page.waitForSelector("[data-testid=plan-result]", { timeout: 15_000 });
  const planMonthly = ((5 * 20 * 6) / 60) * 100;
  const planCost = 40 * 100;
  assert.equal((await page.textContent("[data-testid=plan-uses]")).trim(), grouped(100, 1));
  assert.equal(
    (await page.textContent("[data-testid=plan-roi]")).trim(),
    `${grouped(((planMonthly * 12 - planCost) / planCost) * 100, 1)} %`,
  );
  assert.equal((await page.textContent("[data-testid=plan-break-even]")).trim(), `${grouped(planCost / planMonthly, 1)} months`);
  await page.fill("[data-testid=plan-team_size]", "-1");
  await page.click("[data-testid=plan-submit]");
  await page.waitForSelector("[data-testid=plan-error]", { timeout: 15_000 });
  assert.match(await page.textContent("[data-testid=plan-error]"), /team size: must be a whole number/);

  // A viewer reads the report but gets no form, and the server refuses a change anyway.
  await page.goto(`${server.url}/users`);
  await hydrated(page);
  await page.fill("section.card input[name=username]", "manager");
  await page.selectOption("section.card select[name=role]", "viewer");
  await page.click("section.card button[type=submit]");
  await page.waitForSelector("[data-testid=issued-password]");
  const viewerPassword = (await page.textContent("[data-testid=issued-password]")).trim();
  // Known, outside this test's pages (see fleet.test.mjs): the Users form's pattern.
  const usersPattern = /Pattern attribute value .* is not a valid regular expression/;
  // The browser logs each refused request: the three refusals provoked above, no more.
  const refusedStatus = /the server responded with a status of 400/;
  assert.equal(errors.filter((e) => refusedStatus.test(e)).length, 3, errors.join("\n"));
  assert.deepEqual(errors.filter((e) => !usersPattern.test(e) && !refusedStatus.test(e)), []);
  await context.close();

  const viewerContext = await browser.newContext();
  const viewer = await viewerContext.newPage();
  const viewerErrors = watchErrors(viewer);
  await logIn(viewer, server.url, "manager", viewerPassword);
  await viewer.goto(`${server.url}/roi`);
  await hydrated(viewer);
  assert.equal(await figure(viewer, "roi-percent"), want["roi-percent"]);
  assert.equal(await viewer.locator("[data-testid=roi-inputs]").count(), 0);
  assert.match(await viewer.textContent(`${card} [data-testid=inputs-summary]`), /10\.00 development hours at 80\.00 EUR\/h/);
  const refused = await viewerContext.request.post(`${server.url}/api/roi/set_inputs`, {
    data: {
      server: "everything",
      form: {
        development_hours: "1",
        hourly_rate: "1",
        currency: "EUR",
        default_minutes_saved: "1",
        months: "1",
        tool_minutes: [],
      },
    },
  });
  assert.equal(refused.status(), 403);
  assert.deepEqual(viewerErrors, []);
  await viewerContext.close();
});
