// servent web UI, Messages view: conversations per contact, the broadcast channel,
// unread counts. Plain JavaScript; the token and the API calls are api.js's (the
// same token the main view keeps), the unread count on the nav nav.js's.
"use strict";

const q = (sel, root = document) => root.querySelector(sel);
const EVERYONE = { kind: "channel", key: "", title: "Everyone" };
let ownId = null;
let current = EVERYONE;
let contacts = [];
let unread = { direct: {}, channels: {} };
const strangers = new Set(); // senders who are not contacts
// Acknowledgements pushed by the node (message ID -> when delivered). A list drawn from a
// snapshot taken before the ack arrived reads them, or it would say "waiting…" for good.
const acks = new Map();
const MAX_ACKS = 1000;
let drawing = 0; // the newest conversation load: an older answer arriving later is dropped

function showLogin() { q("#login").hidden = false; q("#messages-app").hidden = true; }

function say(text, isError = false) {
  const el = q("#message");
  el.textContent = text;
  el.className = "message" + (isError ? " error" : "");
}

async function act(fn) {
  try { await fn(); } catch (e) { say(e.message, true); }
}

function nameOf(id) {
  const contact = contacts.find((c) => c.id === id);
  return contact ? contact.name : id.slice(0, 12) + "…";
}

function conversationItem(entry, count) {
  const li = document.createElement("li");
  li.dataset.testid = "conversation";
  li.dataset.key = entry.key;
  li.dataset.kind = entry.kind;
  if (entry.kind === current.kind && entry.key === current.key) li.className = "active";
  const label = document.createElement("span");
  label.textContent = entry.title;
  li.append(label);
  if (count) {
    const badge = document.createElement("span");
    badge.className = "unread";
    badge.dataset.testid = "unread";
    badge.textContent = String(count);
    li.append(badge);
  }
  li.tabIndex = 0;  // reachable and opened with the keyboard too
  li.setAttribute("role", "button");
  li.onclick = () => open(entry);
  li.onkeydown = (event) => {
    if (event.key === "Enter" || event.key === " ") { event.preventDefault(); open(entry); }
  };
  return li;
}

function renderConversations() {
  const list = q("#conversation-list");
  list.replaceChildren();
  const channels = new Set(["", ...Object.keys(unread.channels)]);
  for (const channel of channels) {
    const entry = channel ? { kind: "channel", key: channel, title: `#${channel}` } : EVERYONE;
    list.append(conversationItem(entry, unread.channels[channel] || 0));
  }
  const people = contacts.map((c) => ({ kind: "peer", key: c.id, title: c.name }));
  for (const id of new Set([...strangers, ...Object.keys(unread.direct)])) {
    if (!contacts.some((c) => c.id === id)) people.push({ kind: "peer", key: id, title: nameOf(id) });
  }
  for (const entry of people) list.append(conversationItem(entry, unread.direct[entry.key] || 0));
}

function messageItem(m) {
  const li = document.createElement("li");
  li.dataset.testid = "chat-message";
  li.dataset.id = m.id;
  const mine = m.from === ownId;
  if (mine) li.className = "mine";
  li.append(document.createTextNode(m.text));
  const meta = document.createElement("span");
  meta.className = "meta";
  const when = new Date(m.time * 1000).toLocaleTimeString();
  let state = "";
  if (mine && m.kind === "direct") {
    const delivered = m.delivered || acks.get(m.id);
    state = delivered ? " · delivered ✓" : m.failed ? ` · failed: ${m.failed}` : " · waiting…";
  }
  meta.textContent = `${mine ? "you" : m.name || nameOf(m.from)} · ${when}${state}`;
  meta.dataset.testid = "message-meta";
  li.append(meta);
  return li;
}

async function loadConversation() {
  const param = current.kind === "peer"
    ? `peer=${encodeURIComponent(current.key)}` : `channel=${encodeURIComponent(current.key)}`;
  const mine = ++drawing;
  const messages = await api("GET", `/api/messages?${param}&limit=500`);
  if (mine !== drawing) return; // a newer load (or another conversation) draws instead
  const list = q("#message-list");
  list.replaceChildren(...messages.map(messageItem));
  list.scrollTop = list.scrollHeight;
  const body = current.kind === "peer" ? { peer: current.key } : { channel: current.key };
  unread = await api("POST", "/api/messages/read", body);
  announceUnread(unread);
  renderConversations();
}

async function open(entry) {
  current = entry;
  q("#conversation-title").textContent = entry.title;
  q("#compose-text").placeholder = entry.kind === "peer"
    ? `Message to ${entry.title}` : "Message to everyone on this channel";
  say("");
  await act(loadConversation);
}

async function refreshPeople() {
  contacts = await api("GET", "/api/contacts");
  unread = await api("GET", "/api/messages/unread");
  showUnread(unread);
  const direct = await api("GET", "/api/messages?direction=in&limit=1000");
  for (const m of direct) if (m.kind === "direct") strangers.add(m.from);
  renderConversations();
}

function belongsHere(m) {
  if (m.kind === "broadcast") return current.kind === "channel" && m.channel === current.key;
  const other = m.from === ownId ? m.to : m.from;
  return current.kind === "peer" && other === current.key;
}

async function onReceived(m) {
  if (m.kind === "direct") strangers.add(m.from);
  if (belongsHere(m)) {
    await loadConversation();
  } else {
    unread = await api("GET", "/api/messages/unread");
    showUnread(unread);
    renderConversations();
  }
}

function onDelivered(event) {
  acks.set(event.id, event.delivered || Date.now() / 1000);
  if (acks.size > MAX_ACKS) acks.delete(acks.keys().next().value);
  document.documentElement.dataset.lastAck = event.id; // <html data-last-ack>: tests wait on it
  const li = q(`#message-list li[data-id="${event.id}"]`);
  if (li) q(".meta", li).textContent = q(".meta", li).textContent.replace("waiting…", "delivered ✓");
}

async function handleEvent(kind, data) {
  if (kind === "message_received") await onReceived(data.message || data);
  if (kind === "message_delivered") onDelivered(data);
}

function wire() {
  q("#token-form").onsubmit = (event) => {
    event.preventDefault();
    localStorage.setItem("servent-token", q("#token-input").value.trim());
    location.reload();
  };
  q("#contact-form").onsubmit = (event) => {
    event.preventDefault();
    act(async () => {
      const added = await api("POST", "/api/contacts", {
        id: q("#contact-id").value.trim(), name: q("#contact-name").value.trim() || null,
      });
      q("#contact-id").value = "";
      q("#contact-name").value = "";
      say(`Added ${added.name}.`);
      await refreshPeople();
    });
  };
  q("#compose-form").onsubmit = (event) => {
    event.preventDefault();
    const text = q("#compose-text").value;
    act(async () => {
      const body = current.kind === "peer"
        ? { to: current.key, text } : { broadcast: true, channel: current.key, text };
      await api("POST", "/api/messages", body);
      q("#compose-text").value = "";
      await loadConversation();
    });
  };
}

async function main() {
  apiHooks.tokenRefused = showLogin;
  takeToken();
  wire();
  if (!token) { showLogin(); return; }
  q("#messages-app").hidden = false;
  await act(async () => {
    ownId = (await api("GET", "/api/identity")).id;
    q("#own-id").textContent = `your ID: ${ownId}`;
    await refreshPeople();
    await open(EVERYONE);
  });
  // Each (re)opened stream redraws what it may have missed: the events follow from there.
  followEvents(handleEvent, async () => { await refreshPeople(); await loadConversation(); });
}

main();
