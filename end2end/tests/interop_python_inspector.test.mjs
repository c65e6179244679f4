// The official Python SDK client (PyPI `mcp`, in end2end/.venv) and the MCP Inspector CLI
// (npm @modelcontextprotocol/inspector) against Fleetdeck's /mcp, in front of the reference
// server: both protocol eras, tool listing, calls, progress, isError results, a wrong key.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { startFleetdeck, startReferenceServer } from "../support/harness.mjs";

const KEY = "interop-py-key-0123456789abcdef-abcdefg";
const end2end = resolve(import.meta.dirname, "..");
const python = join(end2end, ".venv/bin/python");
const inspectorDir = join(end2end, "node_modules/@modelcontextprotocol/inspector");
const inspectorBin = join(inspectorDir, JSON.parse(readFileSync(join(inspectorDir, "package.json"), "utf8")).bin["mcp-inspector"]);

let reference;
let server;
let scratch;

before(async () => {
  if (!existsSync(python)) throw new Error(`${python} is missing: run scripts/ensure-tools.sh test`);
  scratch = mkdtempSync(join(tmpdir(), "fleetdeck-interop-"));
  reference = await startReferenceServer();
  const fleet = join(scratch, "fleet.toml");
  writeFileSync(
    fleet,
    `[[server]]\nname = "everything"\ntimeout_ms = 20000\n\n  [[server.instance]]\n  id = "everything-1"\n  url = "${reference.url}"\n\n` +
      `[[assistant]]\nname = "python-and-inspector"\nkey = "${KEY}"\ntier = "admin"\n`,
  );
  server = await startFleetdeck({ adminPassword: "interop admin password", extraArgs: ["--fleet", fleet] });
});

after(async () => {
  await server?.stop();
  reference?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

/** Runs a command; resolves with its exit code and output (a non-zero exit is not an error here). */
function run(file, args, env = {}) {
  return new Promise((done, fail) => {
    execFile(file, args, { timeout: 120_000, maxBuffer: 16 << 20, env: { ...process.env, ...env } }, (error, stdout, stderr) => {
      if (error && typeof error.code !== "number") fail(new Error(`${file} ${args.join(" ")}: ${error.message}\n${stderr}`));
      else done({ code: error ? error.code : 0, stdout, stderr });
    });
  });
}

/** The Inspector CLI with its state (catalog, OAuth store) under a scratch HOME, never ~. */
function inspector(args, key = KEY) {
  return run(
    process.execPath,
    [inspectorBin, "--cli", `${server.url}/mcp`, "--transport", "http", "--header", `Authorization: Bearer ${key}`,
      "--format", "json", "--stored-auth-only", ...args],
    { HOME: scratch },
  );
}

function assertPrefixedTools(names) {
  assert.ok(names.includes("everything__echo"), names.join(", "));
  assert.ok(names.includes("everything__trigger-long-running-operation"), names.join(", "));
  assert.ok(names.every((n) => n.startsWith("everything__")), names.join(", "));
}

test("the Python SDK lists, calls, gets progress and isError results through the gateway", async (t) => {
  const { code, stdout, stderr } = await run(python, [join(end2end, "support/python_client.py"), `${server.url}/mcp`, KEY]);
  assert.equal(code, 0, stderr);
  const summary = JSON.parse(stdout);

  // legacy: the initialize handshake; auto: server/discover finds 2026-07-28 and adopts it.
  for (const [mode, version] of [["legacy", "2025-11-25"], ["auto", "2026-07-28"]]) {
    await t.test(`mode ${mode}`, () => {
      const s = summary[mode];
      assert.equal(s.exception, undefined, s.exception);
      assert.equal(s.protocol_version, version);
      assertPrefixedTools(s.tools);
      assert.deepEqual(s.echo, { is_error: false, texts: ["Echo: from python"] });
      assert.equal(s.long.is_error, false);
      assert.match(s.long.texts[0], /completed/);
      assert.ok(s.long.progress.length >= 3, `progress notifications: ${JSON.stringify(s.long.progress)}`);
      assert.ok(s.long.progress.every((p) => p.total === 4), JSON.stringify(s.long.progress));
      // Invalid arguments are a tool error the model can read, not a JSON-RPC error (SEP-1303).
      for (const label of ["number", "missing"]) {
        const bad = s.invalid[label];
        assert.equal(bad.mcp_error, undefined, `${label}: ${JSON.stringify(bad)}`);
        assert.equal(bad.is_error, true, `${label}: ${JSON.stringify(bad)}`);
        assert.ok(bad.texts.length > 0 && bad.texts.every((text) => /message/.test(text)), JSON.stringify(bad));
      }
      // Fleetdeck answers server/discover, so even the auto probe gets no 4xx.
      assert.ok(s.http_statuses.every((status) => status < 300), JSON.stringify(s.http_statuses));
    });
  }

  await t.test("a wrong key is refused with 401", () => {
    const w = summary.wrong_key;
    assert.equal(w.refused, true, JSON.stringify(w));
    assert.ok(w.http_statuses.length > 0 && w.http_statuses.every((status) => status === 401), JSON.stringify(w));
  });
});

test("the Inspector CLI lists and calls tools through the gateway, in both eras", async (t) => {
  for (const era of ["legacy", "modern"]) {
    await t.test(`era ${era}`, async () => {
      const list = await inspector(["--protocol-era", era, "--method", "tools/list"]);
      assert.equal(list.code, 0, list.stderr);
      const { tools } = JSON.parse(list.stdout).result;
      assertPrefixedTools(tools.map((tool) => tool.name));
      const echo = tools.find((tool) => tool.name === "everything__echo");
      assert.equal(echo.inputSchema.properties.message.type, "string");

      const call = await inspector(["--protocol-era", era, "--method", "tools/call", "--tool-name", "everything__echo", "--tool-arg", "message=hi"]);
      assert.equal(call.code, 0, call.stderr);
      assert.deepEqual(JSON.parse(call.stdout).result.content, [{ type: "text", text: "Echo: hi" }]);

      // An isError result: the CLI prints it and exits 5 (its code for tool_is_error).
      const bad = await inspector(["--protocol-era", era, "--method", "tools/call", "--tool-name", "everything__echo", "--tool-args-json", '{"message":5}']);
      assert.equal(bad.code, 5, `${bad.stdout}\n${bad.stderr}`);
      assert.equal(JSON.parse(bad.stdout).result.isError, true);
    });
  }

  await t.test("a wrong key is refused", async () => {
    // --stored-auth-only: the 401 ends the run (exit 3, auth_required) instead of starting OAuth.
    const refused = await inspector(["--method", "tools/list"], "not-a-valid-key-at-all");
    assert.equal(refused.code, 3, `${refused.stdout}\n${refused.stderr}`);
    assert.equal(JSON.parse(refused.stderr).error.code, "auth_required", refused.stderr);
    assert.equal(refused.stdout, "");
  });
});
