// Starts the real fleetdeck binary on a free loopback port with a fresh data dir, and the
// system Chromium (never a downloaded browser) driven by playwright-core.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir, homedir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

const repo = resolve(import.meta.dirname, "../..");
const targetDir = process.env.CARGO_TARGET_DIR ?? join(homedir(), ".cache/fleetdeck/target");

/** The fleetdeck binary under test. */
export const fleetdeckBin = process.env.FLEETDECK_BIN ?? join(targetDir, "debug/fleetdeck");
/** The site cargo-leptos built (wasm, JS, CSS). */
export const siteRoot = process.env.LEPTOS_SITE_ROOT ?? join(repo, "target/site");
/** The optimised site `make release-site` built (hashed names, precompressed copies). */
export const releaseSiteRoot = process.env.FLEETDECK_RELEASE_SITE ?? join(repo, "target/release-site");

/** Starts `fleetdeck serve` (plus `extraArgs`) serving `site`; resolves once it listens. */
export async function startFleetdeck({ adminPassword, extraArgs = [], command = "serve", site = siteRoot }) {
  if (!existsSync(fleetdeckBin)) throw new Error(`${fleetdeckBin} is missing: run make build`);
  const built = existsSync(join(site, "pkg/fleetdeck.wasm")) || existsSync(join(site, "hash.txt"));
  if (!built) throw new Error(`no built site under ${site}`);
  const dataDir = mkdtempSync(join(tmpdir(), "fleetdeck-e2e-"));
  const env = { ...process.env, FLEETDECK_ADMIN_PASSWORD: adminPassword, RUST_LOG: "info" };
  delete env.DATABASE_URL;
  const child = spawn(
    fleetdeckBin,
    [command, "--addr", "127.0.0.1:0", "--data-dir", dataDir, "--site-root", site, ...extraArgs],
    {
      env,
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  const log = [];
  const url = await new Promise((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`fleetdeck did not start:\n${log.join("")}`)), 60_000);
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk) => {
      log.push(chunk);
      const match = /dashboard at (http:\/\/[0-9.:]+)/.exec(log.join(""));
      if (match) {
        clearTimeout(timer);
        resolveUrl(match[1]);
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`fleetdeck exited with ${code}:\n${log.join("")}`));
    });
  });
  return {
    url,
    dataDir,
    log,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((done) => child.on("exit", done));
        child.kill("SIGTERM");
        await exited;
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Headless Debian Chromium, with the flags this closed network needs. */
export async function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-dev-shm-usage",
    ],
  });
}

/** Collects uncaught page errors and console errors (hydration mismatches show up here). */
export function watchErrors(page) {
  const errors = [];
  page.on("pageerror", (error) => errors.push(`pageerror: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(`console: ${message.text()}`);
  });
  return errors;
}

/** Resolves once the page has hydrated (the app marks <body> after hydration). */
export async function hydrated(page) {
  await page.waitForSelector("body[data-hydrated]", { timeout: 30_000 });
}

/** Logs `username` in through the login page and waits to land on `next`. */
export async function logIn(page, serverUrl, username, password, next = "/") {
  await page.goto(next === "/" ? `${serverUrl}/login` : `${serverUrl}/login?next=${next}`);
  await hydrated(page);
  await page.fill("input[name=username]", username);
  await page.fill("input[name=password]", password);
  await page.click("button[type=submit]");
  await page.waitForURL(`${serverUrl}${next}`);
}

/** A free loopback TCP port. */
export async function freePort() {
  const { createServer } = await import("node:net");
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolvePort(port));
    });
  });
}

/** The reference MCP server over streamable HTTP on loopback; resolves once it listens. */
export async function startReferenceServer() {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    ["--require", join(repo, "end2end/support/loopback.cjs"), referenceServerScript, "streamableHttp"],
    { env: { ...process.env, PORT: String(port) }, stdio: "ignore" },
  );
  const { connect } = await import("node:net");
  const deadline = Date.now() + 30_000;
  for (;;) {
    const up = await new Promise((done) => {
      const socket = connect(port, "127.0.0.1", () => { socket.destroy(); done(true); });
      socket.on("error", () => done(false));
    });
    if (up) break;
    if (Date.now() > deadline) throw new Error(`the reference server did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url: `http://127.0.0.1:${port}/mcp`, stop: () => child.kill("SIGTERM") };
}

/** The reference server's entry point (for stdio instances). */
export const referenceServerScript = join(repo, "end2end/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
