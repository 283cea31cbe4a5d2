// The official CometD JavaScript client's AckExtension against callbackd, with the connection
// dropped between a push and its acknowledgement. A small TCP proxy sits between the client
// and the server and kills the connection that carries a chosen push, so the server has sent
// it and the client never received it.
//
//   node tests/node/cometd_ack.mjs <base URL, e.g. http://127.0.0.1:8080>
//
// Checks, over long-polling:
//   1. reconnect: with the extension the lost push arrives again on /_genesys, once, when the
//      client connects again with the same clientId;
//   2. re-handshake: the client that lost it is cut off for good, and a new client of the same
//      gms_user (a restarted app) gets it on its /_genesys subscription;
//   3. without the extension nothing changes: no ext in the replies, and the lost push stays lost.
// Prints one line per check; exits 1 on the first failure.

import { adapt } from "cometd-nodejs-client";
import { CometD, AckExtension } from "cometd";
import net from "node:net";

const base = (process.argv[2] ?? process.env.CALLBACKD_URL ?? "").replace(/\/+$/, "");
if (!base) {
    console.error("usage: node cometd_ack.mjs <base URL>");
    process.exit(2);
}
const STEP_MS = 8000;
adapt();

class CheckFailed extends Error {}
const fail = (what) => {
    throw new CheckFailed(`FAIL ${what}`);
};
const ok = (what) => console.log(`ok   ${what}`);

function within(what, promise, ms = STEP_MS) {
    let timer;
    const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new CheckFailed(`FAIL ${what}: timed out after ${ms} ms`)), ms);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A TCP proxy to the server that can kill the connection carrying `marker`, once. */
class Proxy {
    #server;
    #target;
    #sockets = new Set();
    #dropMarker = null;
    #dropped = null;
    blocked = false;

    constructor(target) {
        this.#target = target;
        this.#server = net.createServer((client) => this.#accept(client));
    }

    async listen() {
        await new Promise((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
        return `http://127.0.0.1:${this.#server.address().port}`;
    }

    /** Resolves once a reply containing `marker` has been cut off. */
    dropReplyContaining(marker) {
        this.#dropMarker = marker;
        return new Promise((resolve) => (this.#dropped = resolve));
    }

    /** Refuses every connection from now on, and cuts the open ones. */
    block() {
        this.blocked = true;
        for (const socket of this.#sockets) socket.destroy();
    }

    close() {
        this.block();
        this.#server.close();
    }

    #accept(client) {
        if (this.blocked) {
            client.destroy();
            return;
        }
        const upstream = net.connect(this.#target.port, this.#target.hostname);
        for (const socket of [client, upstream]) {
            this.#sockets.add(socket);
            socket.on("close", () => this.#sockets.delete(socket));
            socket.on("error", () => {});
        }
        client.on("data", (chunk) => upstream.write(chunk));
        upstream.on("data", (chunk) => {
            if (this.#dropMarker && chunk.toString("latin1").includes(this.#dropMarker)) {
                this.#dropMarker = null;
                client.destroy();
                upstream.destroy();
                this.#dropped?.();
                return;
            }
            client.write(chunk);
        });
        client.on("close", () => upstream.destroy());
        upstream.on("close", () => client.destroy());
    }
}

async function http(method, path, { form, gmsUser } = {}) {
    const headers = { "Content-Type": "application/x-www-form-urlencoded" };
    if (gmsUser) headers["gms_user"] = gmsUser;
    const body = form ? new URLSearchParams(form).toString() : undefined;
    const response = await fetch(`${base}${path}`, { method, headers, body, signal: AbortSignal.timeout(STEP_MS) });
    const text = await response.text();
    try {
        return [response.status, JSON.parse(text)];
    } catch {
        return [response.status, text];
    }
}

/** A comet service of `gmsUser`, whose internal notifications are pushed to its clients. */
async function cometService(gmsUser) {
    const [status, body] = await http("POST", "/genesys/1/service/callback/chat-delay", {
        form: { _customer_number: "5551234", _device_os: "comet" },
        gmsUser,
    });
    if (status !== 200 || typeof body?._id !== "string") fail(`create service: ${status} ${JSON.stringify(body)}`);
    return body._id;
}

async function notify(id, gmsUser, text) {
    const [status, body] = await http("POST", `/genesys/1/service/${id}/internal-notification`, {
        form: { _display_message: text },
        gmsUser,
    });
    if (status !== 200) fail(`internal-notification ${text}: ${status} ${JSON.stringify(body)}`);
}

/** A long-polling CometD client of `gmsUser` at `url`, with or without the AckExtension. */
async function client(url, gmsUser, withAck) {
    const cometd = new CometD();
    cometd.unregisterTransport("websocket");
    if (withAck) cometd.registerExtension("ack", new AckExtension());
    cometd.configure({ url: `${url}/genesys/cometd`, requestHeaders: { gms_user: gmsUser }, logLevel: "warn" });
    const seen = { handshakeExt: undefined, connectExts: [] };
    cometd.addListener("/meta/handshake", (m) => (seen.handshakeExt = m.ext));
    cometd.addListener("/meta/connect", (m) => m.successful && seen.connectExts.push(m.ext));
    const received = [];
    const waiters = [];
    const handshake = await within("handshake", new Promise((resolve) => cometd.handshake(resolve)));
    if (!handshake.successful) fail(`handshake: ${JSON.stringify(handshake.error)}`);
    const subscribed = await within(
        "subscribe",
        new Promise((resolve) =>
            cometd.subscribe(
                "/_genesys",
                (message) => {
                    received.push(message.data);
                    for (const waiter of waiters.splice(0)) waiter();
                },
                resolve,
            ),
        ),
    );
    if (!subscribed.successful) fail(`subscribe: ${JSON.stringify(subscribed.error)}`);
    /** The display messages of the internal notifications received so far, in order. */
    const texts = () =>
        received.filter((push) => push?.tag?.startsWith("service.internal.")).map((push) => push.message._display_message);
    /** Resolves once a push with display message `text` has arrived. */
    const arrival = (text) =>
        new Promise((resolve) => {
            const check = () => (texts().includes(text) ? resolve() : waiters.push(check));
            check();
        });
    return { cometd, seen, received, texts, arrival };
}

async function reconnect(proxyUrl, proxy) {
    const user = "ack-reconnect";
    const id = await cometService(user);
    const c = await client(proxyUrl, user, true);
    if (c.seen.handshakeExt?.ack !== true) fail(`1: handshake reply ext ${JSON.stringify(c.seen.handshakeExt)}`);
    ok("1: the handshake reply says ext.ack true");
    const dropped = proxy.dropReplyContaining("lost-then-resent");
    await notify(id, user, "lost-then-resent");
    await within("1: the reply with the push is cut off", dropped);
    ok("1: the connection carrying the push was cut");
    await within("1: the push arrives again after the reconnect", c.arrival("lost-then-resent"));
    const resent = c.received.find((p) => p.message._display_message === "lost-then-resent");
    if (resent.tag !== `service.internal.${id}` || !/^[0-9a-f]{32}$/.test(resent.id)) {
        fail(`1: resent push ${JSON.stringify(resent)}`);
    }
    ok(`1: the push arrived on /_genesys after the reconnect ${JSON.stringify(resent)}`);
    await notify(id, user, "after");
    await within("1: the next push", c.arrival("after"));
    if (JSON.stringify(c.texts()) !== JSON.stringify(["lost-then-resent", "after"])) {
        fail(`1: pushes received ${JSON.stringify(c.texts())}`);
    }
    if (!c.seen.connectExts.every((ext) => typeof ext?.ack === "number")) {
        fail(`1: connect replies without a batch: ${JSON.stringify(c.seen.connectExts)}`);
    }
    ok("1: each push once, in order, and every connect reply names its batch");
    await within("1: disconnect", new Promise((resolve) => c.cometd.disconnect(resolve)));
}

async function rehandshake(target) {
    const user = "ack-rehandshake";
    const id = await cometService(user);
    const proxy = new Proxy(target);
    const proxyUrl = await proxy.listen();
    const gone = await client(proxyUrl, user, true);
    const dropped = proxy.dropReplyContaining("lost-with-the-app");
    await notify(id, user, "lost-with-the-app");
    await within("2: the reply with the push is cut off", dropped);
    proxy.block();
    ok("2: the push's connection was cut and the first client can no longer reach the server");
    if (gone.texts().length !== 0) fail(`2: the first client got ${JSON.stringify(gone.texts())}`);
    const fresh = await client(base, user, true);
    await within("2: the new client of the same gms_user gets the push", fresh.arrival("lost-with-the-app"));
    const got = fresh.received.find((push) => push?.message?._display_message === "lost-with-the-app");
    if (got.tag !== `service.internal.${id}`) fail(`2: push ${JSON.stringify(got)}`);
    ok(`2: a new client of ${user} got it on /_genesys: ${JSON.stringify(got)}`);
    await within("2: disconnect", new Promise((resolve) => fresh.cometd.disconnect(resolve)));
    gone.cometd.disconnect();
    proxy.close();
}

async function withoutExtension(proxyUrl, proxy) {
    const user = "ack-none";
    const id = await cometService(user);
    const c = await client(proxyUrl, user, false);
    if (c.seen.handshakeExt?.ack !== undefined) fail(`3: handshake reply ext ${JSON.stringify(c.seen.handshakeExt)}`);
    const dropped = proxy.dropReplyContaining("lost-for-good");
    await notify(id, user, "lost-for-good");
    await within("3: the reply with the push is cut off", dropped);
    await notify(id, user, "after-the-loss");
    await within("3: the next push", c.arrival("after-the-loss"));
    if (JSON.stringify(c.texts()) !== JSON.stringify(["after-the-loss"])) fail(`3: received ${JSON.stringify(c.texts())}`);
    if (c.seen.connectExts.some((ext) => ext?.ack !== undefined)) {
        fail(`3: connect replies carry ext.ack: ${JSON.stringify(c.seen.connectExts)}`);
    }
    ok("3: without the extension the replies carry no ext.ack and the lost push is not sent again");
    await within("3: disconnect", new Promise((resolve) => c.cometd.disconnect(resolve)));
}

let failed = false;
try {
    const target = new URL(base);
    const proxy = new Proxy(target);
    const proxyUrl = await proxy.listen();
    await reconnect(proxyUrl, proxy);
    await rehandshake(target);
    await withoutExtension(proxyUrl, proxy);
    proxy.close();
} catch (err) {
    failed = true;
    console.log(err instanceof CheckFailed ? err.message : `FAIL ${err?.stack ?? err}`);
}
console.log(failed ? "FAILED" : "PASSED");
process.exit(failed ? 1 : 0);
