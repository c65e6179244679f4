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

/** Starts `fleetdeck serve`; resolves once it listens. */
export async function startFleetdeck({ adminPassword }) {
  if (!existsSync(fleetdeckBin)) throw new Error(`${fleetdeckBin} is missing: run make build`);
  if (!existsSync(join(siteRoot, "pkg/fleetdeck.wasm"))) throw new Error(`no built site under ${siteRoot}`);
  const dataDir = mkdtempSync(join(tmpdir(), "fleetdeck-e2e-"));
  const env = { ...process.env, FLEETDECK_ADMIN_PASSWORD: adminPassword, RUST_LOG: "info" };
  delete env.DATABASE_URL;
  const child = spawn(
    fleetdeckBin,
    ["serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir, "--site-root", siteRoot],
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
