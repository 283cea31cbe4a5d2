// The customer's side of the scripts that drive callbackd over plain HTTP (the GMS API as a
// mobile or web client calls it, and the admin or agent API with the admin token), shared by
// chat_delay.mjs and desktop.mjs:
//
//   import { httpClient } from "./customer.mjs";
//   const http = httpClient(base, token, 5000);
//   const [status, body] = await http("POST", "/genesys/1/service/callback/chat-delay",
//     { form: { _customer_number: "5551234" }, gmsUser: "me" });

/**
 * A function `http(method, path, { form, json, gmsUser, admin })` that sends one request to
 * `base` and answers `[status, body]` (the body parsed as JSON when it is, else its text, for
 * failure messages). `form` is sent urlencoded, `json` as JSON; `gmsUser` sets the `gms_user`
 * header; `admin` adds `Authorization: Bearer <token>`. Each request gives up after
 * `timeoutMs`.
 */
export function httpClient(base, token, timeoutMs) {
  return async function http(method, path, { form, json, gmsUser, admin } = {}) {
    const headers = {};
    let body;
    if (form) {
      headers["Content-Type"] = "application/x-www-form-urlencoded";
      body = new URLSearchParams(form).toString();
    } else if (json) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(json);
    }
    if (gmsUser) headers["gms_user"] = gmsUser;
    if (admin) headers["Authorization"] = `Bearer ${token}`;
    const response = await fetch(`${base}${path}`, { method, headers, body, signal: AbortSignal.timeout(timeoutMs) });
    const text = await response.text();
    let parsed = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // Not JSON: keep the text for the failure message.
    }
    return [response.status, parsed];
  };
}
