// Drives Chat API version 2's CometD form with the official CometD JavaScript client (npm
// `cometd`, run in Node by `cometd-nodejs-client`) the way a web chat widget does: handshake,
// subscribe to /service/chatV2/<service>, publish `requestChat`, then every operation named by
// its `secureKey` alone, reading answers and the agent's messages on the same channel. Once over
// long-polling and once over the websocket.
//
//   node tests/node/chat_v2.mjs <base URL> <admin token>
//
// Prints one line per check; exits 1 on the first failure or timeout.

import { adapt } from "cometd-nodejs-client";
import { CometD } from "cometd";
import { WebSocket } from "ws";
import { httpClient } from "./customer.mjs";

const base = (process.argv[2] ?? process.env.CALLBACKD_URL ?? "").replace(/\/+$/, "");
const token = process.argv[3] ?? process.env.CALLBACKD_ADMIN_TOKEN;
if (!base || !token) {
    console.error("usage: node chat_v2.mjs <base URL> <admin token>");
    process.exit(2);
}
const STEP_MS = 5000;
const AGENT = "marco";
const SERVICE = "request-chat";
const CHANNEL = `/service/chatV2/${SERVICE}`;

adapt();

/** `ws` takes headers as a third argument; CometD's WebSocketTransport cannot pass any. */
function webSocketWithHeaders(headers) {
    return class extends WebSocket {
        constructor(url, protocols, options) {
            super(url, protocols, { ...options, headers: { ...headers, ...options?.headers } });
        }
    };
}

class CheckFailed extends Error {}

function ok(transport, what) {
    console.log(`ok   ${transport}: ${what}`);
}

function fail(transport, what) {
    throw new CheckFailed(`FAIL ${transport}: ${what}`);
}

function within(transport, what, promise, ms = STEP_MS) {
    let timer;
    const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new CheckFailed(`FAIL ${transport}: ${what}: timed out after ${ms} ms`)), ms);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const http = httpClient(base, token, STEP_MS);

/** What arrived on the chatV2 channel, and waiting for one that matches. */
class Received {
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

    /** What arrived and matched nothing yet (for failure messages). */
    unmatched() {
        return JSON.stringify(this.#received);
    }

    next(matches) {
        const index = this.#received.findIndex(matches);
        if (index >= 0) return Promise.resolve(this.#received.splice(index, 1)[0]);
        return new Promise((resolve) => this.#waiters.push({ matches, resolve }));
    }
}

/** Whether `data` carries a message of `type` from a party of `from`, with `text` if given. */
function has(data, type, from, text) {
    return (data?.messages ?? []).some(
        (m) => m.type === type && m.from?.type === from && (text === undefined || m.text === text),
    );
}

function describe(message) {
    return JSON.stringify(message, (key, value) => (key === "transport" ? value?.type ?? "(transport)" : value));
}

async function run(transport) {
    const gmsUser = `callbackd-chat-v2-${transport}`;
    const headers = { gms_user: gmsUser };
    window.WebSocket = webSocketWithHeaders(headers);
    const cometd = new CometD();
    if (transport === "long-polling") cometd.unregisterTransport("websocket");
    cometd.configure({ url: `${base}/genesys/cometd`, requestHeaders: headers, logLevel: process.env.COMETD_LOG ?? "warn" });
    const problems = [];
    cometd.addListener("/meta/unsuccessful", (message) => problems.push(message));

    const handshake = await within(transport, "handshake", new Promise((resolve) => cometd.handshake(resolve)));
    if (!handshake.successful) fail(transport, `handshake: ${describe(handshake)}`);
    if (cometd.getTransport()?.type !== transport) fail(transport, `uses ${cometd.getTransport()?.type}`);
    ok(transport, `handshake (${handshake.clientId})`);

    // A widget listens on the service channel; its answers and the chat's events come there.
    const received = new Received();
    const subscribed = await within(
        transport,
        `subscribe to ${CHANNEL}`,
        new Promise((resolve) => cometd.subscribe(CHANNEL, (message) => received.add(message.data), resolve)),
    );
    if (!subscribed.successful) fail(transport, `subscribe: ${describe(subscribed)}`);
    ok(transport, `subscribed to ${CHANNEL}`);

    /** Publishes an operation; resolves with the publish acknowledgement. */
    const publish = (data) =>
        within(transport, `publish ${data.operation}`, new Promise((resolve) => cometd.publish(CHANNEL, data, resolve)));

    // The test's agents start logged out: only AGENT takes the chat.
    let status, body;
    for (const [agent, state] of [[AGENT, "ready"]]) {
        [status, body] = await http("POST", `/genesys/1/agent/${agent}/state`, { json: { state }, admin: true });
        if (status !== 200) fail(transport, `${agent} ${state}: ${status} ${JSON.stringify(body)}`);
    }

    const ack = await publish({ operation: "requestChat", nickname: "Ann", subject: "bill", userData: { order: "42" } });
    if (!ack.successful) fail(transport, `requestChat publish: ${describe(ack)}`);
    const chat = await within(transport, "the requestChat answer", received.next((d) => typeof d?.chatId === "string"));
    if (chat.statusCode !== 0 || !chat.secureKey || !chat.userId || chat.alias !== "1" || chat.chatEnded !== false)
        fail(transport, `requestChat answer: ${JSON.stringify(chat)}`);
    if (!has(chat, "ParticipantJoined", "Client") || chat.messages[0].index !== 1 || chat.nextPosition !== chat.messages.length + 1)
        fail(transport, `requestChat transcript: ${JSON.stringify(chat)}`);
    ok(transport, `requestChat: chatId ${chat.chatId}, ${JSON.stringify(chat.messages[0])}`);
    const secureKey = chat.secureKey;

    // The ready agent joins at once: in the answer already, or delivered just after it.
    const joined = has(chat, "ParticipantJoined", "Agent")
        ? chat
        : await within(transport, "the agent's ParticipantJoined", received.next((d) => has(d, "ParticipantJoined", "Agent")));
    ok(transport, `agent joined: ${JSON.stringify(joined.messages.find((m) => m.from.type === "Agent"))}`);

    // Later operations name the chat by its secureKey alone, as widgets send them.
    await publish({ operation: "sendMessage", message: "My bill", secureKey });
    const mine = await within(
        transport,
        "my message",
        received.next((d) => has(d, "Message", "Client", "My bill")),
    ).catch((err) => fail(transport, `${err.message}; received ${received.unmatched()}`));
    ok(transport, `sendMessage delivered at index ${mine.messages[0].index}`);

    [status, body] = await http("GET", `/genesys/1/agent/${AGENT}/interactions`, { admin: true });
    const service = Array.isArray(body) ? body.find((i) => i.chat?.chatSessionId === chat.chatId)?.service_id : undefined;
    if (!service) fail(transport, `the agent's interaction: ${status} ${JSON.stringify(body)}`);
    const text = `Hello over ${transport}`;
    [status, body] = await http("POST", `/genesys/1/agent/${AGENT}/chat/${service}/message`, { json: { text }, admin: true });
    if (status !== 200) fail(transport, `agent message: ${status} ${JSON.stringify(body)}`);
    const answered = await within(transport, "the agent's message", received.next((d) => has(d, "Message", "Agent", text)));
    if (answered.chatId !== chat.chatId || answered.statusCode !== 0) fail(transport, `agent's delivery: ${JSON.stringify(answered)}`);
    ok(transport, `delivered ${JSON.stringify(answered.messages[0])}`);

    /**
     * Publishes `data` until what `matches` arrives; an answer with `statusCode` 1 (the chat's
     * rate limit: "try again") is tried again a second later, as a widget does.
     */
    const perform = async (data, what, matches) => {
        for (let attempt = 0; attempt < 5; attempt++) {
            await publish(data);
            const got = await within(transport, what, received.next((d) => matches(d) || d?.statusCode === 1));
            if (got.statusCode !== 1) return got;
            await new Promise((resolve) => setTimeout(resolve, 1100));
        }
        fail(transport, `${what}: still refused after 5 attempts`);
    };
    await perform({ operation: "startTyping", message: "It is", secureKey }, "TypingStarted", (d) =>
        has(d, "TypingStarted", "Client", "It is"),
    );
    await perform({ operation: "stopTyping", secureKey }, "TypingStopped", (d) => has(d, "TypingStopped", "Client"));
    await perform({ operation: "updateNickname", nickname: "Annie", secureKey }, "NicknameUpdated", (d) =>
        (d?.messages ?? []).some((m) => m.type === "NicknameUpdated" && m.from.nickname === "Annie"),
    );
    await perform({ operation: "customNotice", message: "page=bill", secureKey }, "Notice", (d) =>
        has(d, "Notice", "Client", "page=bill"),
    );
    await perform({ operation: "pushUrl", pushUrl: "https://example.com/bill", secureKey }, "PushUrl", (d) =>
        has(d, "PushUrl", "Client", "https://example.com/bill"),
    );
    ok(transport, "startTyping, stopTyping, updateNickname, customNotice, pushUrl delivered");

    const updated = await publish({ operation: "updateData", userData: { page: "bill" }, secureKey });
    if (!updated.successful) fail(transport, `updateData publish: ${describe(updated)}`);
    // The answer comes in the same reply as the acknowledgement: the data is stored by now.
    [status, body] = await http("GET", `/genesys/1/admin/callback/${service}`, { admin: true });
    if (body?.user_data?.page !== "bill" || body?.user_data?.order !== "42") fail(transport, `user data: ${JSON.stringify(body)}`);
    ok(transport, "updateData stored the user data");

    await publish({ operation: "refreshChat", secureKey, transcriptPosition: 1 });
    const all = await within(transport, "the whole transcript", received.next((d) => d?.messages?.length > 5));
    const indexes = all.messages.map((m) => m.index);
    if (indexes.some((index, i) => index !== i + 1)) fail(transport, `transcript indexes ${indexes}`);
    ok(transport, `refreshChat from 1: ${indexes.length} events`);

    await publish({ operation: "sendMessage", message: "x", secureKey: "not-the-key" });
    const refused = await within(transport, "the refusal", received.next((d) => d?.statusCode === 2));
    if (refused.errors?.[0]?.code !== 103) fail(transport, `wrong key: ${JSON.stringify(refused)}`);
    ok(transport, `a wrong secureKey: ${JSON.stringify(refused.errors[0])}`);

    await publish({ operation: "disconnect", secureKey });
    const ended = await within(transport, "chatEnded", received.next((d) => d?.chatEnded === true && d.statusCode === 0));
    ok(transport, `disconnect: chatEnded (nextPosition ${ended.nextPosition})`);

    const unsuccessful = problems.filter((message) => message.channel !== "/meta/disconnect");
    if (unsuccessful.length > 0) fail(transport, `unsuccessful Bayeux replies: ${describe(unsuccessful)}`);
    const disconnected = await within(transport, "disconnect", new Promise((resolve) => cometd.disconnect(resolve)));
    if (!disconnected.successful) fail(transport, `disconnect: ${describe(disconnected)}`);
    ok(transport, "disconnected");
}

let failed = false;
for (const transport of ["long-polling", "websocket"]) {
    try {
        await run(transport);
    } catch (err) {
        failed = true;
        console.log(err instanceof CheckFailed ? err.message : `FAIL ${transport}: ${err?.stack ?? err}`);
    }
}
console.log(failed ? "FAILED" : "PASSED");
process.exit(failed ? 1 : 0);
