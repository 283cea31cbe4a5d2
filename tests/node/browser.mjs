// Shared by the browser tests: launches Debian's Chromium through playwright-core, fails on
// any console error or uncaught exception in a page, and saves screenshots under
// target/screenshots (never committed). Each test script imports what it needs:
//
//   import { launch, newPage, shot, signIn, step, fail } from "./browser.mjs";
//
// Scripts get the server's address as argv[2] and the admin token as argv[3]
// (see tests/api/browser.rs).

import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import net from "node:net";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const SCREENSHOTS = process.env.SCREENSHOT_DIR || join(here, "..", "..", "target", "screenshots");
mkdirSync(SCREENSHOTS, { recursive: true });

/** Chromium as the machine has it: no downloads, no background networking. */
export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
}

const errors = [];

/**
 * A page in a new context (its own cookies) whose console errors and uncaught exceptions
 * fail the test. `viewport` defaults to 1280x800.
 */
export async function newPage(browser, { viewport = { width: 1280, height: 800 }, name = "page" } = {}) {
  const context = await browser.newContext({ viewport, acceptDownloads: true });
  const page = await context.newPage();
  page.expectedFailures = new Set();
  page.on("console", (message) => {
    if (message.type() !== "error") return;
    const url = message.location().url || "";
    // A page the test asked for knowing it answers 4xx (a 403 page, say) logs an error too.
    if (message.text().startsWith("Failed to load resource") && page.expectedFailures.has(url)) return;
    errors.push(`${name}: console error: ${message.text()} (${url})`);
  });
  page.on("pageerror", (error) => errors.push(`${name}: uncaught: ${error.message}`));
  page.setDefaultTimeout(10_000);
  return page;
}

/** Goes to `url`, which is expected to answer `status` (a 403 page): its load error is not a page error. */
export async function gotoExpecting(page, url, status) {
  page.expectedFailures.add(url);
  const response = await page.goto(url);
  if (response.status() !== status) fail(`${url} answered ${response.status()}, expected ${status}`);
  return response;
}

/** Saves a full-page screenshot as target/screenshots/<name>.png. */
export async function shot(page, name) {
  const path = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  console.log(`screenshot ${path}`);
}

/**
 * Signs in through the form of `portal` ("admin" or "agent") and waits for the landing page,
 * or for `next` (a path of the portal) when given.
 */
export async function signIn(page, base, username, password, portal = "admin", next = null) {
  if (next) page.expectedFailures.add(`${base}${next}`);
  await page.goto(`${base}/${portal}/login${next ? `?next=${encodeURIComponent(next)}` : ""}`);
  await page.getByLabel("User name").fill(username);
  await page.getByLabel("Password").fill(password);
  await Promise.all([
    page.waitForURL((url) => !url.pathname.endsWith("/login")),
    page.getByRole("button", { name: "Sign in" }).click(),
  ]);
}

/**
 * A TCP proxy to the server whose connection a test can cut and restore: the page's network
 * link. Playwright's `context.setOffline(true)` does not break a stream that is already open
 * in this Chromium (an EventSource stays connected and keeps receiving), so a page that must
 * lose its connection is opened through this proxy instead. `cut()` destroys every open
 * connection and refuses new ones (each is closed as soon as it arrives) until `restore()`.
 * `silence()` is the other way a network fails: every connection stays open and new ones are
 * accepted, but no byte goes through in either direction (dropped, as a dead route drops
 * them) until `restore()`: the browser sees nothing wrong, its streams just go quiet.
 */
export class NetworkLink {
  #server;
  #target;
  #sockets = new Set();
  #cut = false;
  #silent = false;

  /** A link to `base` (`http://127.0.0.1:PORT`); `listen()` opens it. */
  constructor(base) {
    this.#target = new URL(base);
    this.#server = net.createServer((client) => this.#accept(client));
  }

  /** Starts listening on a free port; answers the base URL to use instead of the server's. */
  async listen() {
    await new Promise((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${this.#server.address().port}`;
  }

  cut() {
    this.#cut = true;
    for (const socket of this.#sockets) socket.destroy();
  }

  silence() {
    this.#silent = true;
  }

  restore() {
    this.#cut = false;
    this.#silent = false;
  }

  close() {
    this.cut();
    this.#server.close();
  }

  #accept(client) {
    if (this.#cut) {
      client.destroy();
      return;
    }
    const upstream = net.connect(Number(this.#target.port), this.#target.hostname);
    for (const socket of [client, upstream]) {
      this.#sockets.add(socket);
      socket.on("close", () => this.#sockets.delete(socket));
      socket.on("error", () => {});
    }
    // By hand rather than pipe(), so that bytes can be dropped while the link is silent.
    const forward = (from, to) => from.on("data", (bytes) => {
      if (!this.#silent) to.write(bytes);
    });
    forward(client, upstream);
    forward(upstream, client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  }
}

/** Logs one step; the Rust side prints the output when the script fails. */
export function step(message) {
  console.log(`ok   ${message}`);
}

/** Throws with `message` (the script then exits non-zero). */
export function fail(message) {
  throw new Error(message);
}

/** Call at the end: fails if any page logged an error. */
export function assertNoPageErrors() {
  if (errors.length > 0) fail(`errors in pages:\n${errors.join("\n")}`);
}

/** Runs `body(browser)` with a browser, closes it, checks page errors, sets the exit code. */
export async function run(body) {
  const browser = await launch();
  try {
    await body(browser);
    assertNoPageErrors();
    console.log("done");
  } catch (error) {
    console.error(`FAIL ${error.stack || error}`);
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}
