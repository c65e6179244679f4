// The dashboard at a thousand instances, and the release site.
//
// A synthetic fleet (`fleetdeck scale-fleet`: 50 servers × 20 instances, every 17th at a
// closed port) behind a real server: the Fleet page is one summary row per server, a
// filter chosen in the form lands in the URL and finds exactly the unreachable instances,
// and a drain clicked while live updates run hits a button that has not moved (the row is
// updated in place, not redrawn).
//
// The release site (`make release-site`: wasm-opt, hashed names, brotli and gzip copies,
// code split per page) served by fleetdeck: the page hydrates, the wasm, JS and CSS come
// compressed with a year-long immutable cache header, a page's split-off code arrives
// when it is opened, pages and data come gzip-compressed and revalidated.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  startFleetdeck,
  launchChromium,
  watchErrors,
  hydrated,
  logIn,
  fleetdeckBin,
  releaseSiteRoot,
} from "../support/harness.mjs";

const ADMIN_PASSWORD = "e2e scale admin password";

let fleetDir;
let syntheticFleet;
let server;
let browser;

/** Starts `fleetdeck scale-fleet`; resolves with its fleet file once it is ready. */
async function startScaleFleet(dir) {
  const fleetFile = join(dir, "fleet.toml");
  const child = spawn(fleetdeckBin, ["scale-fleet", "--write-fleet", fleetFile], {
    env: { ...process.env, RUST_LOG: "error" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise((ready, fail) => {
    const timer = setTimeout(() => fail(new Error("scale-fleet did not start")), 30_000);
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk) => {
      if (chunk.includes("synthetic fleet ready")) {
        clearTimeout(timer);
        ready();
      }
    });
    child.on("exit", (code) => fail(new Error(`scale-fleet exited with ${code}`)));
  });
  return { child, fleetFile };
}

before(async () => {
  fleetDir = mkdtempSync(join(tmpdir(), "fleetdeck-scale-"));
  syntheticFleet = await startScaleFleet(fleetDir);
  server = await startFleetdeck({
    adminPassword: ADMIN_PASSWORD,
    extraArgs: ["--fleet", syntheticFleet.fleetFile, "--probe-interval-s", "1"],
  });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  syntheticFleet?.child.kill("SIGTERM");
  rmSync(fleetDir, { recursive: true, force: true });
});

test("the Fleet page at 1,000 instances: summary rows, a filter kept in the URL, a drain while live updates run", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = watchErrors(page);
  await logIn(page, server.url, "admin", ADMIN_PASSWORD, "/fleet");
  await hydrated(page);
  await page.waitForSelector("[data-testid=fleet-summary] tbody tr");
  assert.equal(await page.locator("[data-testid=fleet-summary] tbody tr").count(), 50);
  assert.equal(await page.locator("[data-testid^=instance-]").count(), 0, "servers are collapsed");
  assert.match(await page.textContent("[data-testid=fleet-counts]"), /50 servers, 1000 instances/);

  // A filter chosen in the form: the URL holds it, the page lists exactly the matches.
  await page.selectOption("[data-testid=filter-health]", "unhealthy");
  await page.selectOption("[data-testid=filter-server]", "srv00");
  await page.click("[data-testid=filter-apply]");
  await page.waitForURL(/health=unhealthy/);
  assert.match(page.url(), /server=srv00/);
  // srv00-i00 and srv00-i17 point at a closed port (every 17th instance of the fleet).
  await page.waitForFunction(
    () => document.querySelectorAll("[data-testid^=instance-srv00-]").length === 2,
    null,
    { timeout: 30_000 },
  );
  for (const id of ["srv00-i00", "srv00-i17"]) {
    assert.equal((await page.textContent(`[data-testid=health-${id}]`)).trim(), "unhealthy");
  }
  // The filtered URL loaded afresh shows the same.
  await page.reload();
  await hydrated(page);
  await page.waitForSelector("[data-testid=instance-srv00-i17]");
  assert.equal(await page.locator("[data-testid^=instance-]").count(), 2);

  // A drain while live updates run: the row is updated in place, so the button the
  // pointer is over stays where it is (and is the same element) across refreshes.
  await page.goto(`${server.url}/fleet?server=srv03&health=healthy`);
  await hydrated(page);
  const drain = page.locator("[data-testid=drain-srv03-i05]");
  await drain.waitFor();
  const button = await drain.elementHandle();
  const before = await button.boundingBox();
  const refreshes = page.waitForResponse((r) => r.url().endsWith("/api/fleet/page"), { timeout: 5_000 });
  await refreshes;
  await page.waitForTimeout(2_500);
  assert.ok(await button.evaluate((node) => node.isConnected), "the button was not redrawn");
  assert.deepEqual(await button.boundingBox(), before, "the button did not move");
  await button.click();
  await page.locator("[data-testid=instance-srv03-i05] [data-testid=confirm]").click();
  const result = page.locator("[data-testid=instance-srv03-i05] [data-testid=action-result]");
  await result.waitFor();
  assert.equal((await result.textContent()).trim(), "srv03-i05: active → drained");
  await page.waitForFunction(
    () => document.querySelector("[data-testid=admin-srv03-i05]")?.textContent.trim() === "drained",
  );
  // Back to service, for whoever runs next.
  await page.locator("[data-testid=undrain-srv03-i05]").click();
  await page.locator("[data-testid=instance-srv03-i05] [data-testid=confirm]").click();
  await page.waitForFunction(
    () => document.querySelector("[data-testid=admin-srv03-i05]")?.textContent.trim() === "active",
  );
  assert.deepEqual(errors, []);
  await context.close();
});

/** The raw answer to a GET (no decompression): status, headers, body bytes. */
function rawGet(url, headers) {
  return new Promise((done, fail) => {
    const request = httpRequest(url, { headers }, (response) => {
      const chunks = [];
      response.on("data", (chunk) => chunks.push(chunk));
      response.on("end", () => done({ status: response.statusCode, headers: response.headers, bytes: Buffer.concat(chunks).length }));
    });
    request.on("error", fail);
    request.end();
  });
}

test("the release site: hashed, precompressed, immutable assets; compressed, revalidated pages; it hydrates", async () => {
  const release = await startFleetdeck({ adminPassword: ADMIN_PASSWORD, site: releaseSiteRoot });
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors = watchErrors(page);
    const responses = [];
    page.on("response", (response) => responses.push(response));
    await logIn(page, release.url, "admin", ADMIN_PASSWORD);
    await hydrated(page);

    for (const kind of ["wasm", "js", "css"]) {
      const asset = responses.find((r) => new RegExp(`/pkg/fleetdeck\\.[A-Za-z0-9_-]{8,}\\.${kind}$`).test(r.url()));
      assert.ok(asset, `a hashed .${kind} was loaded: ${responses.map((r) => r.url()).join(" ")}`);
      const headers = await asset.allHeaders();
      assert.ok(["br", "gzip"].includes(headers["content-encoding"]), `${kind}: ${headers["content-encoding"]}`);
      assert.match(headers["cache-control"], /max-age=31536000/);
      assert.match(headers["cache-control"], /immutable/);
    }
    const wasmUrl = responses.find((r) => /\.wasm$/.test(r.url())).url();
    const brotli = await rawGet(wasmUrl, { "accept-encoding": "br" });
    const gzip = await rawGet(wasmUrl, { "accept-encoding": "gzip" });
    const plain = await rawGet(wasmUrl, {});
    assert.equal(brotli.headers["content-encoding"], "br");
    assert.equal(gzip.headers["content-encoding"], "gzip");
    assert.equal(plain.headers["content-encoding"], undefined);
    assert.ok(brotli.bytes < gzip.bytes && gzip.bytes < plain.bytes, `${brotli.bytes} < ${gzip.bytes} < ${plain.bytes}`);
    console.log(`release wasm: ${plain.bytes} bytes raw, ${brotli.bytes} brotli, ${gzip.bytes} gzip`);

    // A page whose code is split off: its parts arrive when it is opened, hashed,
    // compressed and immutable like the rest.
    const before = responses.length;
    await page.click("nav >> text=Fleet");
    // This server has no fleet: the page says so once its code has arrived.
    await page.waitForSelector("[data-testid=no-servers]");
    const parts = responses.slice(before).filter((r) => /\/pkg\/(split_|chunk_).*\.wasm$/.test(r.url()));
    assert.ok(parts.length > 0, "the Fleet page's code was fetched when it was opened");
    for (const part of parts) {
      const headers = await part.allHeaders();
      assert.match(part.url(), /\.[A-Za-z0-9_-]{22}\.wasm$/);
      assert.match(headers["cache-control"], /immutable/);
      assert.ok(["br", "gzip"].includes(headers["content-encoding"]), `${part.url()}: ${headers["content-encoding"]}`);
    }

    // The page itself and the data behind it: compressed, and revalidated at every load.
    const doc = await page.goto(`${release.url}/`);
    await hydrated(page);
    const docHeaders = await doc.allHeaders();
    assert.equal(docHeaders["content-encoding"], "gzip");
    assert.equal(docHeaders["cache-control"], "no-cache");
    const unhashed = await rawGet(`${release.url}/pkg/fleetdeck.wasm`, {});
    assert.equal(unhashed.status, 404, "only the hashed names exist");
    assert.deepEqual(errors, []);
    await context.close();
  } finally {
    await release.stop();
  }
});
