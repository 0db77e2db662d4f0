// servent web UI: plain JavaScript, no build step. The API calls, the token and the
// event stream are in api.js; helpers without API knowledge (plural, bytes, copy
// buttons) in format.js, the remove dialog in remove.js, the unread count in nav.js.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const cards = new Map(); // torrent id -> card element
const torrentsById = new Map(); // torrent id -> latest snapshot (shares show its magnet)
const PRIORITY_EVENTS = new Set(["priorities", "file_priorities_changed"]); // old and new name
let sharesKey = null; // the shared folders last drawn, to fetch /api/shares only on change

function say(text, isError = false) {
  const el = $("#message");
  el.textContent = text;
  el.className = "message" + (isError ? " error" : "");
}

function showLogin(reason) {
  $("#login").hidden = false;
  $("#app").hidden = true;
  const error = $("#login-error");
  error.textContent = reason || "";
  error.hidden = !reason;
  $("#node-status").textContent = "not connected";
  $("#token-input").focus();
}

/** The stored token was refused: forget it and ask again, saying why. */
function rejectToken() {
  if (token) localStorage.removeItem("servent-token");
  token = null;
  showLogin(WRONG_TOKEN);
}

function card(t) {
  let el = cards.get(t.id);
  if (!el) {
    el = $("#torrent-template").content.firstElementChild.cloneNode(true);
    el.dataset.id = t.id;
    $(".pause", el).onclick = () => act(() => api("POST", `/api/torrents/${t.id}/pause`));
    $(".resume", el).onclick = () => act(() => api("POST", `/api/torrents/${t.id}/resume`));
    $(".remove", el).onclick = () => askRemove(t.id, el.dataset.name);
    $(".details-toggle", el).onclick = () => {
      const details = $(".details", el);
      details.hidden = !details.hidden;
      $(".details-toggle", el).setAttribute("aria-expanded", String(!details.hidden));
      if (!details.hidden) loadDetails(t.id).catch((e) => say(e.message, true));
    };
    wireCopyButton($(".copy", el), () => $(".magnet", el).textContent);
    cards.set(t.id, el);
  }
  el.dataset.name = t.name;
  el.dataset.state = t.state;
  $(".name", el).textContent = t.name;
  $(".state", el).textContent = t.state;
  showError(el, t);
  $("progress", el).value = t.progress;
  $(".progress-text", el).textContent =
    `${(t.progress * 100).toFixed(1)}% of ${t.size ? bytes(t.size) : "?"}`;
  $(".rates", el).textContent = `↓ ${bytes(t.download_rate)}/s ↑ ${bytes(t.upload_rate)}/s`;
  $(".peers", el).textContent = plural(t.peers, "peer");
  $(".eta", el).textContent = t.progress >= 1 ? "done" : `ETA ${duration(t.eta)}`;
  $(".pause", el).disabled = t.paused;
  $(".resume", el).disabled = !t.paused;
  $(".copy", el).setAttribute("aria-label", `copy the magnet link of ${t.name}`);
  $(".magnet", el).textContent = t.magnet || "";
  $(".magnet-line", el).hidden = !t.magnet;
  return el;
}

/** Why a torrent stopped: the API's ``error`` (older nodes may not send the key). */
function showError(el, t) {
  const box = $(".error-reason", el);
  const reason = typeof t.error === "string" && t.error ? t.error : null;
  const text = reason
    ? `Stopped: ${reason}`
    : t.state === "error" ? "Stopped by an error (the node gave no reason)." : "";
  box.textContent = text;
  box.hidden = !text;
}

function renderTorrents(list) {
  const root = $("#torrents");
  torrentsById.clear();
  for (const t of list) torrentsById.set(t.id, t);
  for (const [id, el] of cards) {
    if (!torrentsById.has(id)) { el.remove(); cards.delete(id); }
  }
  if (!list.length) { root.innerHTML = '<p class="empty">No transfers yet.</p>'; return; }
  const empty = $(".empty", root);
  if (empty) empty.remove();
  for (const t of list) {
    const el = card(t);
    if (el.parentNode !== root) root.appendChild(el);
  }
}

async function loadDetails(id) {
  const el = cards.get(id);
  if (!el) return;
  const [files, peers] = await Promise.all([
    api("GET", `/api/torrents/${id}/files`),
    api("GET", `/api/torrents/${id}/peers`),
  ]);
  renderFiles(el, id, files);
  renderPeers(el, peers);
}

function prioritySelect(id, f) {
  const select = document.createElement("select");
  select.setAttribute("data-testid", "priority");
  select.setAttribute("aria-label", `priority of ${f.path}`);
  for (const [value, label] of [[0, "skip"], [1, "normal"], [4, "high"], [7, "highest"]]) {
    select.add(new Option(label, String(value)));
  }
  if (![0, 1, 4, 7].includes(f.priority)) select.add(new Option(`p${f.priority}`, String(f.priority)));
  select.value = String(f.priority);
  select.onchange = () => act(async () => {
    await api("PUT", `/api/torrents/${id}/priorities`, { priorities: { [f.index]: Number(select.value) } });
    say(`Priority of ${f.path} set to ${select.selectedOptions[0].textContent}.`);
    await loadDetails(id);
  });
  return select;
}

function renderFiles(el, id, files) {
  const table = $(".files", el);
  const body = table.tBodies[0];
  body.innerHTML = "";
  table.caption.textContent = files.length
    ? plural(files.length, "file")
    : "File list not known yet (waiting for metadata).";
  for (const f of files) {
    const row = body.insertRow();
    row.insertCell().textContent = f.path;
    row.insertCell().textContent = bytes(f.size);
    const progress = row.insertCell();
    progress.className = "file-progress";
    progress.setAttribute("data-testid", "file-progress");
    progress.textContent = `${Math.round(f.progress * 100)}%`;
    row.insertCell().appendChild(prioritySelect(id, f));
    const play = row.insertCell();
    if (MEDIA.test(f.path)) {
      const button = document.createElement("button");
      button.textContent = "Play";
      button.setAttribute("data-testid", "play");
      button.setAttribute("aria-label", `play ${f.path}`);
      button.onclick = () => act(() => playFile(el, id, f));
      play.appendChild(button);
    }
  }
}

// Audio and video a browser may play; the stream URL serves any file, the button only these.
const MEDIA = /\.(mp4|m4v|webm|mkv|mov|ogv|ogg|mp3|m4a|aac|flac|wav|opus)$/i;

async function playFile(el, id, f) {
  // The URL carries a token for this one file (not the API token): a <video> can use it.
  const stream = await api("POST", `/api/torrents/${id}/stream`, { file: f.index });
  const video = $(".player", el);
  video.hidden = false;
  video.src = stream.path;
  say(`Playing ${f.path} while it downloads.`);
  video.play().catch(() => {});  // autoplay may be refused; the controls are there
}

function updateFileProgress(el, id, files) {
  // In place, so a priority menu the user has open is not rebuilt under them.
  const cells = el.querySelectorAll(".files .file-progress");
  if (cells.length !== files.length) { renderFiles(el, id, files); return; }
  files.forEach((f, i) => { cells[i].textContent = `${Math.round(f.progress * 100)}%`; });
}

async function refreshOpenDetails() {
  // Peers and file progress change all the time: refresh every open details panel.
  for (const [id, el] of cards) {
    if ($(".details", el).hidden) continue;
    const [files, peers] = await Promise.all([
      api("GET", `/api/torrents/${id}/files`),
      api("GET", `/api/torrents/${id}/peers`),
    ]);
    updateFileProgress(el, id, files);
    renderPeers(el, peers);
  }
}

function renderPeers(el, peers) {
  const table = $(".peer-table", el);
  const body = table.tBodies[0];
  body.innerHTML = "";
  table.caption.textContent = peers.length
    ? `${plural(peers.length, "peer")} connected` : "No peers connected.";
  table.tHead.hidden = !peers.length;
  for (const p of peers) {
    const row = body.insertRow();
    row.setAttribute("data-testid", "peer");
    for (const text of [`${p.host}:${p.port}`, p.client, `${Math.round(p.progress * 100)}%`,
      `${bytes(p.download_rate)}/s`, `${bytes(p.upload_rate)}/s`, p.flags]) {
      row.insertCell().textContent = text;
    }
  }
}

async function act(fn) {
  try { await fn(); await refresh(); } catch (e) { if (!(e instanceof AuthError)) say(e.message, true); }
}

function reachability(s) {
  const verdict = s.reachable === true ? "reachable" : s.reachable === false ? "not reachable" : "reachability unknown";
  const where = s.external_address ? ` at ${s.external_address.join(":")}` : "";
  return `${verdict}${where} (NAT: ${s.nat || "unknown"})`;
}

async function refreshStatus() {
  const s = await api("GET", "/api/status");
  const listen = s.listen_address ? `peers on ${s.listen_address.join(":")}` : "no peer listener";
  const dht = s.dht_enabled ? plural(s.dht_nodes, "node") : "off";
  $("#node-status").textContent =
    `${plural(s.torrents, "transfer")} · ↓ ${bytes(s.download_rate)}/s ↑ ${bytes(s.upload_rate)}/s · ` +
    `${listen} · DHT ${dht} · ${reachability(s)} · total ↓ ${bytes(s.downloaded)} ↑ ${bytes(s.uploaded)}`;
  const key = JSON.stringify(s.shared_folders);
  if (key !== sharesKey) {
    renderShares(await api("GET", "/api/shares"));
    sharesKey = key;
  }
}

function renderShares(shares) {
  const table = $("#shares");
  const body = table.tBodies[0];
  $("#shares-empty").hidden = shares.length > 0;
  table.hidden = shares.length === 0;
  table.caption.textContent = plural(shares.length, "shared folder");
  body.innerHTML = "";
  for (const share of shares) {
    const row = body.insertRow();
    row.setAttribute("data-testid", "share");
    row.insertCell().textContent = share.path;
    row.insertCell().textContent = since(share.added_at);
    const button = document.createElement("button");
    button.type = "button";
    button.className = "copy";
    button.textContent = "Copy";
    button.setAttribute("data-testid", "copy-magnet");
    button.setAttribute("aria-label", `copy the magnet link of ${share.path}`);
    wireCopyButton(button, () => (torrentsById.get(share.id) || {}).magnet || "");
    row.insertCell().appendChild(button);
  }
}

async function refreshSettings() {
  const s = await api("GET", "/api/settings");
  const form = $("#settings-form");
  form.download_rate_limit.value = Math.round(s.download_rate_limit / 1024);
  form.upload_rate_limit.value = Math.round(s.upload_rate_limit / 1024);
  form.max_connections.value = s.max_connections;
  form.max_peers_per_torrent.value = s.max_peers_per_torrent;
  const pending = s.pending_restart || {};  // saved, applied at the next start
  form.listen_port.value = pending.listen_port ?? s.listen_port;
  form.encryption.value = pending.encryption ?? s.encryption;
}

async function refresh() {
  renderTorrents(await api("GET", "/api/torrents"));
  await refreshStatus();
}

function handleEvent(kind, parsed) {
  if (kind === "torrents") {
    renderTorrents(parsed);
    refreshStatus().catch(() => {});
    refreshOpenDetails().catch(() => {});
  } else if (PRIORITY_EVENTS.has(kind) && cards.has(parsed.torrent_id)) {
    const details = $(".details", cards.get(parsed.torrent_id));
    if (!details.hidden) loadDetails(parsed.torrent_id).catch(() => {});
  } else if (kind === "message_received") {
    refreshUnread().catch(() => {});
  }
}

function readFile(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsArrayBuffer(file);
  });
}

/** Try a typed token before keeping it, so a wrong one is reported here and now. */
async function submitToken(event) {
  event.preventDefault();
  const candidate = $("#token-input").value.trim();
  let response;
  try {
    response = await fetch("/api/status", { headers: { Authorization: `Bearer ${candidate}` } });
  } catch (e) {
    showLogin(`Cannot reach the node (${e.message}). Is it still running?`);
    return;
  }
  if (response.status === 401) {
    showLogin(WRONG_TOKEN);
    $("#token-input").select();
    return;
  }
  localStorage.setItem("servent-token", candidate);
  location.reload();
}

function wireAddForms() {
  $("#add-form").onsubmit = (event) => {
    event.preventDefault();
    const magnet = $("#magnet-input").value.trim();
    const file = $("#torrent-file").files[0];
    act(async () => {
      if (!magnet && !file) throw new Error("Give a magnet link or choose a .torrent file.");
      const added = file
        ? await api("POST", "/api/torrents", await readFile(file))
        : await api("POST", "/api/torrents", { magnet });
      say(added.existing ? `${added.name} is already in the list; nothing added.` : `Added ${added.name}.`);
      $("#magnet-input").value = "";
      $("#torrent-file").value = "";
    });
  };
  $("#share-form").onsubmit = (event) => {
    event.preventDefault();
    const path = $("#share-input").value.trim();
    act(async () => {
      if (!path) throw new Error("Give the folder's path on the node's computer.");
      say("Hashing the folder…");
      const shared = await api("POST", "/api/shares", { path });
      say(shared.existing ? `Already sharing ${shared.path}.` : `Sharing ${shared.path}.`);
      $("#share-result .magnet").textContent = shared.magnet;
      $("#share-result").hidden = false;
      $("#share-input").value = "";
    });
  };
  wireCopyButton($("#share-result .copy"), () => $("#share-result .magnet").textContent);
  $("#share-start").onclick = () => {
    const input = $("#share-input");
    input.scrollIntoView({ block: "center" });
    input.focus();
    say("Type the path of a folder on the node's computer, then press Share folder.");
  };
}

function wire() {
  $("#token-form").onsubmit = submitToken;
  wireAddForms();
  $("#remove-dialog form").onsubmit = (event) => {
    if (event.submitter && event.submitter.value === "confirm") {
      event.preventDefault();
      confirmRemove($("#remove-dialog")).catch((e) => say(e.message, true));
    }
  };
  $("#settings-form").onsubmit = (event) => {
    event.preventDefault();
    const form = event.target;
    act(async () => {
      const result = await api("PATCH", "/api/settings", {
        download_rate_limit: Number(form.download_rate_limit.value) * 1024,
        upload_rate_limit: Number(form.upload_rate_limit.value) * 1024,
        max_connections: Number(form.max_connections.value),
        max_peers_per_torrent: Number(form.max_peers_per_torrent.value),
        listen_port: Number(form.listen_port.value),
        encryption: form.encryption.value,
      });
      say(result.restart_required
        ? "Saved; the new port or encryption applies after a restart."
        : "Settings saved.");
    });
  };
}

async function main() {
  apiHooks.tokenRefused = rejectToken;
  takeToken();
  wire();
  if (!token) { showLogin(); return; }
  $("#app").hidden = false;
  try {
    await refresh();
    await refreshSettings();
  } catch (e) {
    if (!(e instanceof AuthError)) say(e.message, true);
    return;
  }
  followEvents(handleEvent, refreshUnread);
}

main();
