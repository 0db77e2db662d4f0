// servent web UI, Synced folders view: make a synced share (its keys with copy
// buttons), join one by key, follow each one's version, peers and state, leave one.
// The list is asked again on each "torrents" event of the stream (once a second).
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const ROLE_WORDS = {
  owner: "owner",
  read_write: "read-write",
  read_only: "read-only",
  encrypted: "encrypted (keeps a copy it cannot read)",
};
const KEY_NAMES = [
  ["read_write_key", "Read-write key"],
  ["read_only_key", "Read-only key"],
  ["encrypted_key", "Encrypted key"],
];
let listing = null; // the refresh in flight, so events never stack requests

function say(text, isError = false) {
  const el = $("#message");
  el.textContent = text;
  el.className = "message" + (isError ? " error" : "");
}

function showLogin() { $("#login").hidden = false; $("#sync-app").hidden = true; }

async function act(fn) {
  try { await fn(); await refreshShares(); } catch (e) { say(e.message, true); }
}

/** Whether the node's API takes a password for synced shares (newer nodes do). */
async function takesPassword() {
  const document_ = await api("GET", "/api/openapi.json");
  const route = (document_.paths || {})["/api/sync"] || {};
  const body = (((route.post || {}).requestBody || {}).content || {})["application/json"];
  return Boolean(body && body.schema && body.schema.properties && body.schema.properties.password);
}

/** The keys of a new share, each with a copy button; a key the node gave no value is left out. */
function showKeys(keys) {
  const box = $("#keys");
  const list = $("dl", box);
  list.replaceChildren();
  for (const [field, title] of KEY_NAMES) {
    if (!keys[field]) continue;
    const term = document.createElement("dt");
    term.textContent = title;
    const value = document.createElement("dd");
    value.className = "magnet-line";
    const code = document.createElement("code");
    code.className = "magnet";
    code.dataset.testid = field;
    code.textContent = keys[field];
    const button = document.createElement("button");
    button.type = "button";
    button.className = "copy";
    button.textContent = "Copy";
    button.dataset.testid = `copy-${field}`;
    button.setAttribute("aria-label", `copy the ${title.toLowerCase()}`);
    wireCopyButton(button, () => code.textContent);
    value.append(code, button);
    list.append(term, value);
  }
  box.hidden = false;
  box.focus();
}

/** One peer's state in words: the version it swaps with this node and how much of it it has. */
function peerWords(peer) {
  const has = peer.progress >= 1 ? "has it" : `has ${Math.floor(peer.progress * 100)}%`;
  return `${peer.address} · version ${peer.version}, ${has}`;
}

function showPeers(cell, share) {
  const states = share.peer_states || [];
  const count = document.createElement("span");
  count.className = "peer-count";
  count.textContent = plural(share.peers, "peer");
  cell.replaceChildren(count);
  if (!states.length) return;
  const list = document.createElement("ul");
  list.className = "peer-states";
  for (const peer of states) {
    const item = document.createElement("li");
    item.dataset.testid = "sync-peer";
    item.textContent = peerWords(peer);
    list.append(item);
  }
  cell.append(list);
}

/** A new row: its cells are filled by updateRow, its Leave button made once. */
function newRow(body, share) {
  const row = body.insertRow();
  row.dataset.testid = "sync-share";
  row.dataset.id = share.id;
  for (const testid of ["sync-path", "sync-role", "sync-version", "sync-peers", "sync-state"]) {
    row.insertCell().dataset.testid = testid;
  }
  const leave = document.createElement("button");
  leave.type = "button";
  leave.className = "danger";
  leave.textContent = "Leave";
  leave.dataset.testid = "sync-leave";
  leave.setAttribute("aria-label", `leave the share of ${share.path}`);
  leave.onclick = () => askLeave(share);
  row.insertCell().append(leave);
  return row;
}

/** Fill a row in place, so a button under the user's pointer or focus stays the same. */
function updateRow(row, share) {
  const cell = (testid) => row.querySelector(`[data-testid="${testid}"]`);
  cell("sync-path").textContent = share.path;
  cell("sync-role").textContent = ROLE_WORDS[share.role] || share.role;
  cell("sync-version").textContent = String(share.version);
  showPeers(cell("sync-peers"), share);
  cell("sync-state").textContent = share.state;
}

function renderShares(shares) {
  const table = $("#sync-shares");
  const body = table.tBodies[0];
  $("#sync-empty").hidden = shares.length > 0;
  table.hidden = shares.length === 0;
  table.caption.textContent = plural(shares.length, "synced folder");
  const rows = new Map([...body.rows].map((row) => [row.dataset.id, row]));
  const wanted = new Set(shares.map((share) => share.id));
  for (const [id, row] of rows) if (!wanted.has(id)) row.remove();
  for (const share of shares) updateRow(rows.get(share.id) || newRow(body, share), share);
}

async function refreshShares() {
  if (!listing) {
    listing = api("GET", "/api/sync").then(renderShares).finally(() => { listing = null; });
  }
  return listing;
}

function askLeave(share) {
  const dialog = $("#leave-dialog");
  dialog.dataset.id = share.id;
  dialog.dataset.path = share.path;
  $(".title", dialog).textContent = `Leave the share of ${share.path}?`;
  dialog.showModal();
  $('[value="cancel"]', dialog).focus();
}

async function confirmLeave(dialog) {
  const { id, path } = dialog.dataset;
  dialog.close();
  await act(async () => {
    await api("DELETE", `/api/sync/${encodeURIComponent(id)}`);
    say(`Left the share of ${path}; the folder is kept as it is.`);
  });
}

/** The form's password, only when the node takes one (an empty field sends none). */
function withPassword(body, input) {
  if (!input.closest("label").hidden && input.value) body.password = input.value;
  return body;
}

function wire() {
  $("#token-form").onsubmit = (event) => {
    event.preventDefault();
    localStorage.setItem("servent-token", $("#token-input").value.trim());
    location.reload();
  };
  $("#create-form").onsubmit = (event) => {
    event.preventDefault();
    act(async () => {
      const path = $("#create-path").value.trim();
      say("Hashing the folder…");
      const keys = await api("POST", "/api/sync", withPassword({ path }, $("#create-password")));
      say(`${path} is shared and kept in sync.`);
      $("#create-path").value = "";
      $("#create-password").value = "";
      showKeys(keys);
    });
  };
  $("#join-form").onsubmit = (event) => {
    event.preventDefault();
    act(async () => {
      const body = { key: $("#join-key").value.trim(), path: $("#join-path").value.trim() };
      const joined = await api("POST", "/api/sync/join", withPassword(body, $("#join-password")));
      say(`Joined as ${ROLE_WORDS[joined.role] || joined.role} into ${joined.path}.`);
      $("#join-key").value = "";
      $("#join-path").value = "";
      $("#join-password").value = "";
    });
  };
  $("#leave-dialog form").onsubmit = (event) => {
    if (event.submitter && event.submitter.value === "confirm") {
      event.preventDefault();
      confirmLeave($("#leave-dialog"));
    }
  };
}

async function main() {
  apiHooks.tokenRefused = showLogin;
  takeToken();
  wire();
  if (!token) { showLogin(); return; }
  $("#sync-app").hidden = false;
  try {
    await refreshShares();
    const password = await takesPassword();
    for (const field of document.querySelectorAll(".password-field")) field.hidden = !password;
  } catch (e) {
    if (!(e instanceof AuthError)) say(e.message, true);
    return;
  }
  followEvents(async (kind) => {
    if (kind === "torrents") await refreshShares();
    else if (kind === "message_received") await refreshUnread();
  }, refreshUnread);
}

main();
