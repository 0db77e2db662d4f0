// servent web UI: plain JavaScript, no build step. Talks to the daemon's JSON API
// with the bearer token (kept in localStorage, taken from "#token=..." once).
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const cards = new Map(); // torrent id -> card element
let token = null;

function takeToken() {
  const match = location.hash.match(/token=([^&]+)/);
  if (match) {
    localStorage.setItem("servent-token", decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname);
  }
  token = localStorage.getItem("servent-token");
}

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
  if (response.status === 401) { showLogin(); }
  if (!response.ok) { throw new Error((data && data.error) || `HTTP ${response.status}`); }
  return data;
}

function say(text, isError = false) {
  const el = $("#message");
  el.textContent = text;
  el.className = "message" + (isError ? " error" : "");
}

function showLogin() {
  $("#login").hidden = false;
  $("#app").hidden = true;
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function duration(s) {
  if (s === null || s === undefined) return "∞";
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

function card(t) {
  let el = cards.get(t.id);
  if (!el) {
    el = $("#torrent-template").content.firstElementChild.cloneNode(true);
    el.dataset.id = t.id;
    $(".pause", el).onclick = () => act(() => api("POST", `/api/torrents/${t.id}/pause`));
    $(".resume", el).onclick = () => act(() => api("POST", `/api/torrents/${t.id}/resume`));
    $(".remove", el).onclick = () => {
      if (!confirm(`Remove "${el.dataset.name}"?`)) return;
      const withData = confirm("Also delete its downloaded files? (OK = delete, Cancel = keep)");
      act(() => api("DELETE", `/api/torrents/${t.id}?delete_data=${withData}`));
    };
    $(".details-toggle", el).onclick = () => {
      const details = $(".details", el);
      details.hidden = !details.hidden;
      if (!details.hidden) loadDetails(t.id);
    };
    cards.set(t.id, el);
  }
  el.dataset.name = t.name;
  el.dataset.state = t.state;
  $(".name", el).textContent = t.name;
  $(".state", el).textContent = t.state;
  $("progress", el).value = t.progress;
  $(".progress-text", el).textContent =
    `${(t.progress * 100).toFixed(1)}% of ${t.size ? bytes(t.size) : "?"}`;
  $(".rates", el).textContent = `↓ ${bytes(t.download_rate)}/s ↑ ${bytes(t.upload_rate)}/s`;
  $(".peers", el).textContent = `${t.peers} peer${t.peers === 1 ? "" : "s"}`;
  $(".eta", el).textContent = t.progress >= 1 ? "done" : `ETA ${duration(t.eta)}`;
  $(".pause", el).disabled = t.paused;
  $(".resume", el).disabled = !t.paused;
  $(".magnet", el).textContent = t.magnet || "";
  return el;
}

function renderTorrents(list) {
  const root = $("#torrents");
  const seen = new Set(list.map((t) => t.id));
  for (const [id, el] of cards) {
    if (!seen.has(id)) { el.remove(); cards.delete(id); }
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

function renderFiles(el, id, files) {
  const table = $(".files", el);
  table.innerHTML = "";
  if (!files.length) table.innerHTML = "<tr><td>File list not known yet (waiting for metadata).</td></tr>";
  for (const f of files) {
    const row = table.insertRow();
    row.insertCell().textContent = f.path;
    row.insertCell().textContent = bytes(f.size);
    const progress = row.insertCell();
    progress.className = "file-progress";
    progress.setAttribute("data-testid", "file-progress");
    progress.textContent = `${Math.round(f.progress * 100)}%`;
    const select = document.createElement("select");
    select.setAttribute("data-testid", "priority");
    select.setAttribute("aria-label", `priority of ${f.path}`);
    for (const [value, label] of [[0, "skip"], [1, "normal"], [4, "high"], [7, "highest"]]) {
      const option = new Option(label, String(value));
      select.add(option);
    }
    if (![0, 1, 4, 7].includes(f.priority)) select.add(new Option(`p${f.priority}`, String(f.priority)));
    select.value = String(f.priority);
    select.onchange = () => act(async () => {
      await api("PUT", `/api/torrents/${id}/priorities`, { priorities: { [f.index]: Number(select.value) } });
      say(`Priority of ${f.path} set to ${select.selectedOptions[0].textContent}.`);
      await loadDetails(id);
    });
    row.insertCell().appendChild(select);
  }
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
  const peerList = $(".peer-list", el);
  peerList.innerHTML = "";
  if (!peers.length) peerList.innerHTML = "<li class='small'>No peers connected.</li>";
  for (const p of peers) {
    const li = document.createElement("li");
    li.textContent = `${p.host}:${p.port} ${p.client} ${Math.round(p.progress * 100)}% ` +
      `↓ ${bytes(p.download_rate)}/s ↑ ${bytes(p.upload_rate)}/s ${p.flags}`;
    peerList.appendChild(li);
  }
}

async function act(fn) {
  try { await fn(); await refresh(); } catch (e) { say(e.message, true); }
}

function reachability(s) {
  const verdict = s.reachable === true ? "reachable" : s.reachable === false ? "not reachable" : "reachability unknown";
  const where = s.external_address ? ` at ${s.external_address.join(":")}` : "";
  return `${verdict}${where} (NAT: ${s.nat || "unknown"})`;
}

async function refreshStatus() {
  const s = await api("GET", "/api/status");
  const listen = s.listen_address ? `peers on ${s.listen_address.join(":")}` : "no peer listener";
  $("#node-status").textContent =
    `${s.torrents} ${s.torrents === 1 ? "transfer" : "transfers"} · ↓ ${bytes(s.download_rate)}/s ↑ ${bytes(s.upload_rate)}/s · ` +
    `${listen} · DHT ${s.dht_enabled ? s.dht_nodes + " nodes" : "off"} · ` +
    `${reachability(s)} · ` +
    `total ↓ ${bytes(s.downloaded)} ↑ ${bytes(s.uploaded)}`;
  const shares = $("#shares");
  shares.innerHTML = "";
  for (const path of s.shared_folders) {
    const li = document.createElement("li");
    li.textContent = path;
    shares.appendChild(li);
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

async function followEvents() {
  // Server-sent events read with fetch so the token travels in a header, not the URL.
  for (;;) {
    try {
      const response = await fetch("/api/events", { headers: { Authorization: `Bearer ${token}` } });
      if (response.status === 401) { showLogin(); return; }
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const chunk = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const kind = (chunk.match(/^event: (.*)$/m) || [])[1];
          const data = (chunk.match(/^data: (.*)$/m) || [])[1];
          if (!kind || !data) continue;
          const parsed = JSON.parse(data);
          if (kind === "torrents") {
            renderTorrents(parsed);
            refreshStatus().catch(() => {});
            refreshOpenDetails().catch(() => {});
          }
          else if (kind === "priorities" && cards.has(parsed.torrent_id)) {
            const details = $(".details", cards.get(parsed.torrent_id));
            if (!details.hidden) loadDetails(parsed.torrent_id).catch(() => {});
          }
        }
      }
    } catch (e) { /* daemon restarting: retry below */ }
    await new Promise((resolve) => setTimeout(resolve, 2000));
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

function wire() {
  $("#token-form").onsubmit = (event) => {
    event.preventDefault();
    localStorage.setItem("servent-token", $("#token-input").value.trim());
    location.reload();
  };
  $("#add-form").onsubmit = (event) => {
    event.preventDefault();
    const magnet = $("#magnet-input").value.trim();
    const file = $("#torrent-file").files[0];
    act(async () => {
      if (!magnet && !file) throw new Error("Give a magnet link or choose a .torrent file.");
      const added = file
        ? await api("POST", "/api/torrents", await readFile(file))
        : await api("POST", "/api/torrents", { magnet });
      say(`Added ${added.name}.`);
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
      say(`Sharing ${shared.path}.`);
      $("#share-result").textContent = shared.magnet;
      $("#share-input").value = "";
    });
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
  takeToken();
  wire();
  if (!token) { showLogin(); return; }
  $("#app").hidden = false;
  try {
    await refresh();
    await refreshSettings();
  } catch (e) { say(e.message, true); }
  followEvents();
}

main();
