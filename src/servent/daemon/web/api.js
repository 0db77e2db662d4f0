// servent web UI: the daemon's JSON API and event stream, shared by every page.
// The bearer token is kept in localStorage (taken from "#token=..." once); a page
// says what to do when the node refuses it by setting apiHooks.tokenRefused.
"use strict";

const WRONG_TOKEN = "This node did not accept that token. Copy it again from the file " +
  "api-token in the node's data directory and paste it here.";
const apiHooks = { tokenRefused: () => {} };
let token = null;

class AuthError extends Error {}

function takeToken() {
  const match = location.hash.match(/token=([^&]+)/);
  if (match) {
    localStorage.setItem("servent-token", decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname);
  }
  token = localStorage.getItem("servent-token");
}

/** One API call: JSON (or raw ArrayBuffer) in, decoded JSON out; the node's error as an Error. */
async function api(method, path, body, contentType) {
  const headers = { Authorization: `Bearer ${token}` };
  let payload;
  if (body instanceof ArrayBuffer) {
    payload = body;
    headers["Content-Type"] = contentType || "application/x-bittorrent";
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, { method, headers, body: payload });
  let data = null;
  try { data = await response.json(); } catch (e) { data = null; }
  if (response.status === 401) { apiHooks.tokenRefused(); throw new AuthError(WRONG_TOKEN); }
  if (!response.ok) { throw new Error((data && data.error) || `HTTP ${response.status}`); }
  return data;
}

/** Split one server-sent event into its name and parsed JSON data (null if it has none). */
function parseEvent(chunk) {
  const kind = (chunk.match(/^event: (.*)$/m) || [])[1];
  const data = (chunk.match(/^data: (.*)$/m) || [])[1];
  return kind && data ? { kind, data: JSON.parse(data) } : null;
}

/** Follow /api/events for ever, calling ``handle(kind, data)`` for each event, and
 * ``opened()`` each time the stream (re)opens: the node subscribes the stream before
 * it answers, so what ``opened`` reads plus the events that follow miss nothing.
 * Read with fetch (not EventSource) so the token travels in a header, not the URL.
 * ``<html data-events>`` says whether the stream is open. */
async function followEvents(handle, opened = async () => {}) {
  for (;;) {
    try {
      const response = await fetch("/api/events", { headers: { Authorization: `Bearer ${token}` } });
      if (response.status === 401) { apiHooks.tokenRefused(); return; }
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      try { await opened(); } catch (e) { console.warn(e); }
      document.documentElement.dataset.events = "open";
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const event = parseEvent(buffer.slice(0, cut));
          buffer = buffer.slice(cut + 2);
          if (!event) continue;
          try { await handle(event.kind, event.data); } catch (e) { console.warn(e); }
        }
      }
    } catch (e) { /* the daemon restarts: try again below */ }
    document.documentElement.dataset.events = "closed";
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}
