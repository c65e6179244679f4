// Sessions under hostile conditions, in Chromium: every page of `fleetdeck demo` hydrates
// under the Content-Security-Policy (no console error, no CSP violation), and a session
// ends when its user's password is changed or reset from another browser.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startFleetdeck, launchChromium, watchErrors, hydrated, logIn } from "../support/harness.mjs";

const ADMIN_PASSWORD = "e2e sessions admin password";
let server;
let browser;

before(async () => {
  server = await startFleetdeck({ adminPassword: ADMIN_PASSWORD, command: "demo", extraArgs: ["--traffic", "10"] });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** A page that records console errors and every CSP violation it reports. */
async function watchedPage(context) {
  const page = await context.newPage();
  await page.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener("securitypolicyviolation", (e) => {
      window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} (${e.sourceFile}:${e.lineNumber})`);
    });
  });
  return { page, errors: watchErrors(page) };
}

test("every page hydrates under the Content-Security-Policy", async () => {
  const { page, errors } = await watchedPage(await browser.newContext());
  await logIn(page, server.url, "admin", ADMIN_PASSWORD);

  // A trace to open: the demo's traffic fills the list.
  await page.goto(`${server.url}/traces`);
  await hydrated(page);
  const link = page.locator("[data-testid=trace-link]").first();
  await link.waitFor({ timeout: 20_000 });
  const tracePath = new URL(await link.getAttribute("href"), server.url).pathname;

  const paths = [
    "/", "/fleet", "/tools", "/breakers", "/caches", "/traces", tracePath, "/permissions",
    "/assistants", "/audit", "/roi", "/users", "/account", "/no-such-page", "/login",
  ];
  for (const path of paths) {
    const response = await page.goto(`${server.url}${path}`);
    const csp = response.headers()["content-security-policy"] ?? "";
    assert.match(csp, /script-src 'self' 'nonce-[\w-]+' 'wasm-unsafe-eval'/, path);
    assert.match(csp, /frame-ancestors 'none'/, path);
    await hydrated(page);
    // Let the page's first requests (resources, charts, the event stream) settle.
    await page.waitForLoadState("networkidle").catch(() => {});
    const violations = await page.evaluate(() => window.__cspViolations);
    assert.deepEqual(violations, [], `${path}: no CSP violation`);
    // The unknown page's document itself answers 404, which Chromium logs; nothing else.
    const expected = path === "/no-such-page"
      ? ["console: Failed to load resource: the server responded with a status of 404 (Not Found)"]
      : [];
    assert.deepEqual(errors.splice(0), expected, `${path}: no console errors`);
  }
  // The waterfall draws its bars without inline styles, failed spans in red.
  await page.goto(`${server.url}${tracePath}`);
  await hydrated(page);
  const bar = page.locator("[data-testid=span-row] .span-bar").first();
  const width = await bar.evaluate((el) => el.getBoundingClientRect().width);
  assert.ok(width > 0, `the bar is drawn (${width} px)`);
});

test("a session ends when its user's password is changed or reset from another browser", async () => {
  const admin = await watchedPage(await browser.newContext());
  await logIn(admin.page, server.url, "admin", ADMIN_PASSWORD, "/users");
  await hydrated(admin.page);
  await admin.page.fill("section.card input[name=username]", "bob");
  await admin.page.click("section.card button:text('Add user')");
  const issued = admin.page.locator("[data-testid=issued-password]");
  await issued.waitFor();
  const password = (await issued.textContent()).trim();

  // Bob in two browsers.
  const laptop = await watchedPage(await browser.newContext());
  const phone = await watchedPage(await browser.newContext());
  await logIn(laptop.page, server.url, "bob", password);
  await logIn(phone.page, server.url, "bob", password);

  // Bob changes his password on the laptop, through the Account page the layout links to.
  await laptop.page.click("[data-testid=who]");
  await laptop.page.waitForURL(`${server.url}/account`);
  await hydrated(laptop.page);
  const form = laptop.page.locator("[data-testid=change-password]");
  await form.locator("input[name=current_password]").fill(password);
  await form.locator("input[name=new_password]").fill("bob's very own password");
  await form.locator("input[name=repeated_password]").fill("bob's very own password");
  await form.locator("button[type=submit]").click();
  await laptop.page.waitForSelector("[data-testid=account-done]:text('Password changed.')");

  // The laptop stays logged in; the phone is logged out.
  await laptop.page.goto(`${server.url}/fleet`);
  assert.equal(new URL(laptop.page.url()).pathname, "/fleet");
  await phone.page.goto(`${server.url}/fleet`);
  assert.equal(new URL(phone.page.url()).pathname, "/login", "the phone's session ended");

  // The admin resets bob's password from the other browser: the laptop's session ends too.
  await admin.page.goto(`${server.url}/users`);
  await hydrated(admin.page);
  await admin.page.click("[data-testid=user-bob] button:text('Reset password')");
  await admin.page.waitForSelector("[data-testid=issued-password]");
  await laptop.page.goto(`${server.url}/fleet`);
  assert.equal(new URL(laptop.page.url()).pathname, "/login", "the reset ended the laptop's session");
  await hydrated(laptop.page);
  await laptop.page.fill("input[name=username]", "bob");
  await laptop.page.fill("input[name=password]", "bob's very own password");
  await laptop.page.click("button[type=submit]");
  await laptop.page.waitForSelector("[data-testid=login-error]");

  // The admin's own session lived through it.
  await admin.page.goto(`${server.url}/users`);
  assert.equal(new URL(admin.page.url()).pathname, "/users");
  for (const { page, errors } of [admin, laptop, phone]) {
    assert.deepEqual(await page.evaluate(() => window.__cspViolations), []);
    // The refused login above answers 401 in the console, on purpose.
    assert.deepEqual(errors.filter((e) => !e.includes("status of 401")), []);
  }
});
