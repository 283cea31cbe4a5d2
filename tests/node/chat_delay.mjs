// Drives callbackd with the official CometD JavaScript client (npm `cometd`, run in Node by
// `cometd-nodejs-client`), once over long-polling and once over the websocket: handshake,
// subscribe to /_genesys, a chat-delay service, its agent-available push, the chat started in
// comet mode and its refresh pushes, disconnect.
//
//   node tests/node/chat_delay.mjs <base URL, e.g. http://127.0.0.1:8080> [admin token]
//
// The base URL may also come from CALLBACKD_URL, the token from CALLBACKD_ADMIN_TOKEN.
// Prints one line per check; exits 1 on the first failure or timeout. COMETD_LOG=debug shows
// the client's own log.

import { adapt } from "cometd-nodejs-client";
import { CometD } from "cometd";
import { WebSocket } from "ws";
import { deepStrictEqual } from "node:assert/strict";
import { httpClient } from "./customer.mjs";

const base = (process.argv[2] ?? process.env.CALLBACKD_URL ?? "").replace(/\/+$/, "");
const token = process.argv[3] ?? process.env.CALLBACKD_ADMIN_TOKEN;
if (!base || !token) {
    console.error("usage: node chat_delay.mjs <base URL> <admin token> (or CALLBACKD_URL, CALLBACKD_ADMIN_TOKEN)");
    process.exit(2);
}
/** How long any one step may take. */
const STEP_MS = 5000;
const AGENT = "kristi";

// XMLHttpRequest and WebSocket for the CometD client, as cometd-nodejs-client provides them.
adapt();

/**
 * The gms_user header must be on the websocket upgrade request, but CometD's WebSocketTransport
 * calls `new window.WebSocket(url, protocol)`: it has no way to pass headers (a browser
 * WebSocket cannot send any), and `requestHeaders` only reach the long-polling requests. In
 * Node, `ws` takes headers as a third argument, so the application passes them there, without
 * touching the CometD client.
 */
function webSocketWithHeaders(headers) {
    return class extends WebSocket {
        constructor(url, protocols, options) {
            super(url, protocols, { ...options, headers: { ...headers, ...options?.headers } });
        }
    };
}

let failed = false;

function ok(transport, what) {
    console.log(`ok   ${transport}: ${what}`);
}

class CheckFailed extends Error {}

function fail(transport, what) {
    throw new CheckFailed(`FAIL ${transport}: ${what}`);
}

/** Resolves with `promise`, or fails the check `what` after `ms`. */
function within(transport, what, promise, ms = STEP_MS) {
    let timer;
    const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new CheckFailed(`FAIL ${transport}: ${what}: timed out after ${ms} ms`)), ms);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A plain HTTP request; returns `[status, body]` (body parsed as JSON when it is). */
const http = httpClient(base, token, STEP_MS);

/** The pushes a CometD subscription received, and waiting for one that matches. */
class Pushes {
    #received = [];
    #waiters = [];

    add(data) {
        const waiter = this.#waiters.find((w) => w.matches(data));
        if (waiter) {
            this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
            waiter.resolve(data);
        } else {
            this.#received.push(data);
        }
    }

    /** The first push (received or to come) for which `matches` is true; it is consumed. */
    next(matches) {
        const index = this.#received.findIndex(matches);
        if (index >= 0) {
            return Promise.resolve(this.#received.splice(index, 1)[0]);
        }
        return new Promise((resolve) => this.#waiters.push({ matches, resolve }));
    }
}

/** A Bayeux reply for a failure message, without the client's transport object it may hold. */
function describe(message) {
    return JSON.stringify(message, (key, value) => (key === "transport" ? value?.type ?? "(transport)" : value));
}

/** The transcript rows of a chat refresh push. */
function rows(push) {
    return push?.message?.transcriptToShow ?? [];
}

async function run(transport) {
    const gmsUser = `callbackd-node-client-${transport}`;
    const headers = { gms_user: gmsUser };
    window.WebSocket = webSocketWithHeaders(headers);

    const cometd = new CometD();
    if (transport === "long-polling") {
        // Otherwise the client would prefer the websocket.
        cometd.unregisterTransport("websocket");
    }
    // For "websocket" every transport stays registered, as in a default client: a fallback to
    // long-polling would be possible, and is caught by checkTransport below.
    cometd.configure({
        url: `${base}/genesys/cometd`,
        requestHeaders: headers,
        logLevel: process.env.COMETD_LOG ?? "warn",
    });
    const problems = [];
    cometd.addListener("/meta/unsuccessful", (message) => problems.push(message));
    const checkTransport = (when) => {
        const used = cometd.getTransport()?.type;
        if (used !== transport) fail(transport, `${when}: the client uses ${used}, not ${transport}`);
    };

    const handshake = await within(
        transport,
        "handshake",
        new Promise((resolve) => cometd.handshake(resolve)),
    );
    if (!handshake.successful) fail(transport, `handshake failed: ${describe(handshake)}`);
    checkTransport("after the handshake");
    ok(transport, `handshake (clientId ${handshake.clientId}, transport ${cometd.getTransport().type})`);

    const pushes = new Pushes();
    const subscribed = await within(
        transport,
        "subscribe to /_genesys",
        new Promise((resolve) => cometd.subscribe("/_genesys", (message) => pushes.add(message.data), resolve)),
    );
    if (!subscribed.successful) fail(transport, `subscribe refused: ${describe(subscribed)}`);
    ok(transport, "subscribed to /_genesys");

    let [status, body] = await http("POST", `/genesys/1/agent/${AGENT}/state`, { json: { state: "ready" }, admin: true });
    if (status !== 200) fail(transport, `${AGENT} ready: ${status} ${JSON.stringify(body)}`);
    ok(transport, `${AGENT} is ready`);

    [status, body] = await http("POST", "/genesys/1/service/callback/chat-delay", {
        form: { _customer_number: "5551234", _device_os: "comet" },
        gmsUser,
    });
    const id = body?._id;
    if (status !== 200 || typeof id !== "string") fail(transport, `create chat-delay: ${status} ${JSON.stringify(body)}`);
    ok(transport, `created chat-delay ${id}`);

    const available = await within(
        transport,
        `the service.agentavailable.${id} push`,
        pushes.next((push) => push?.tag === `service.agentavailable.${id}`),
    );
    try {
        deepStrictEqual(available.message, { _action: "get-dialog-user-confirmation-provide_code-false", _id: id });
    } catch {
        fail(transport, `agent-available push: unexpected message ${JSON.stringify(available.message)}`);
    }
    if (!/^[0-9a-f]{32}$/.test(available.id)) fail(transport, `agent-available push: id ${available.id} is not 32 hex digits`);
    checkTransport("at the agent-available push");
    ok(transport, `push service.agentavailable.${id} ${JSON.stringify(available.message)}`);

    [status, body] = await http("POST", `/genesys/1/service/${id}/connect`, { form: {}, gmsUser });
    if (status !== 200) fail(transport, `connect: ${status} ${JSON.stringify(body)}`);
    ok(transport, "service connect");

    [status, body] = await http("POST", `/genesys/1/service/${id}/ixn/chat`, {
        form: { notify_by: "comet", firstName: "John" },
        gmsUser,
    });
    try {
        deepStrictEqual([status, body], [200, { _id: id, comet_channel: "/_genesys" }]);
    } catch {
        fail(transport, `ixn/chat: ${status} ${JSON.stringify(body)}`);
    }
    ok(transport, `ixn/chat in comet mode ${JSON.stringify(body)}`);

    const refresh = `service.chat.refresh.${id}`;
    const joined = await within(
        transport,
        `the ${refresh} push with Notice.Joined`,
        pushes.next((push) => push?.tag === refresh && rows(push).some((row) => row[0] === "Notice.Joined")),
    );
    const joinedRow = rows(joined).find((row) => row[0] === "Notice.Joined");
    if (joinedRow[4] !== "AGENT") fail(transport, `Notice.Joined row: ${JSON.stringify(joinedRow)}`);
    ok(transport, `push ${refresh} ${JSON.stringify(joinedRow)}`);

    [status, body] = await http("POST", `/genesys/1/service/${id}/ixn/chat/refresh`, { form: { message: "hello" }, gmsUser });
    if (status !== 200) fail(transport, `ixn/chat/refresh: ${status} ${JSON.stringify(body)}`);
    const echoed = await within(
        transport,
        `the ${refresh} push echoing "hello"`,
        pushes.next(
            (push) => push?.tag === refresh && rows(push).some((row) => row[0] === "Message.Text" && row[2] === "hello"),
        ),
    );
    const echoedRow = rows(echoed).find((row) => row[0] === "Message.Text" && row[2] === "hello");
    if (echoedRow[1] !== "John" || echoedRow[4] !== "CLIENT") fail(transport, `echoed row: ${JSON.stringify(echoedRow)}`);
    ok(transport, `push ${refresh} ${JSON.stringify(echoedRow)}`);

    const text = `Hello over ${transport}`;
    [status, body] = await http("POST", `/genesys/1/agent/${AGENT}/chat/${id}/message`, { json: { text }, admin: true });
    if (status !== 200) fail(transport, `agent message: ${status} ${JSON.stringify(body)}`);
    const answered = await within(
        transport,
        `the ${refresh} push with the agent's message`,
        pushes.next(
            (push) => push?.tag === refresh && rows(push).some((row) => row[0] === "Message.Text" && row[2] === text),
        ),
    );
    const answeredRow = rows(answered).find((row) => row[2] === text);
    if (answeredRow[4] !== "AGENT") fail(transport, `agent's row: ${JSON.stringify(answeredRow)}`);
    ok(transport, `push ${refresh} ${JSON.stringify(answeredRow)}`);

    // The agent leaves, so that the next run gets its own reservation.
    [status, body] = await http("POST", `/genesys/1/agent/${AGENT}/chat/${id}/leave`, { admin: true });
    if (status !== 200) fail(transport, `agent leave: ${status} ${JSON.stringify(body)}`);
    ok(transport, `${AGENT} left the chat`);

    checkTransport("before disconnecting");
    const unsuccessful = problems.filter((message) => message.channel !== "/meta/disconnect");
    if (unsuccessful.length > 0) fail(transport, `unsuccessful Bayeux replies: ${describe(unsuccessful)}`);
    const disconnected = await within(
        transport,
        "disconnect",
        new Promise((resolve) => cometd.disconnect(resolve)),
    );
    if (!disconnected.successful) fail(transport, `disconnect: ${describe(disconnected)}`);
    ok(transport, `disconnected (status ${cometd.getStatus()})`);
}

for (const transport of ["long-polling", "websocket"]) {
    try {
        await run(transport);
    } catch (err) {
        failed = true;
        console.log(err instanceof CheckFailed ? err.message : `FAIL ${transport}: ${err?.stack ?? err}`);
    }
}
console.log(failed ? "FAILED" : "PASSED");
// A failed run may leave a client long-polling: do not wait for it.
process.exit(failed ? 1 : 0);
