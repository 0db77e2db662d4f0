// servent web UI: search by name. Results stream in (server-sent events from
// GET /api/search); "Download" adds a result's magnet (its sources included).
"use strict";

function searchRow(result) {
  const row = document.createElement("li");
  row.className = "result";
  row.dataset.testid = "search-result";
  const name = document.createElement("strong");
  name.textContent = result.name;
  const facts = document.createElement("span");
  facts.className = "small";
  const button = document.createElement("button");
  button.textContent = "Download";
  button.setAttribute("data-testid", "search-download");
  button.onclick = async () => {
    button.disabled = true;
    try {
      const added = await api("POST", "/api/torrents", { magnet: result.magnet });
      say(added.existing ? `"${result.name}" is already here` : `downloading "${result.name}"`);
    } catch (error) {
      button.disabled = false;
      say(error.message, true);
    }
  };
  row.append(name, facts, button);
  return row;
}

function showResult(list, rows, result) {
  let row = rows.get(result.infohash);
  if (!row) {
    row = searchRow(result);
    rows.set(result.infohash, row);
    list.append(row);
  }
  const sources = `${result.sources} source${result.sources === 1 ? "" : "s"}`;
  row.querySelector(".small").textContent = `${bytes(result.size)} · ${result.files} file(s) · ${sources}`;
}

async function runSearch(words) {
  const list = document.getElementById("search-results");
  const status = document.getElementById("search-status");
  const rows = new Map();
  list.textContent = "";
  status.textContent = "searching…";
  const response = await fetch(`/api/search?q=${encodeURIComponent(words)}&timeout=2`, {
    headers: { Authorization: `Bearer ${token}`, Accept: "text/event-stream" },
  });
  if (!response.ok) {
    let message = `HTTP ${response.status}`;
    try { message = (await response.json()).error || message; } catch (e) { /* not JSON */ }
    status.textContent = message;
    return;
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let kind = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + 1);
      if (line.startsWith("event: ")) kind = line.slice(7);
      else if (line.startsWith("data: ") && kind === "result") {
        showResult(list, rows, JSON.parse(line.slice(6)));
      }
    }
  }
  status.textContent = rows.size ? `${rows.size} found` : "nothing found";
}

document.getElementById("search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const words = document.getElementById("search-input").value.trim();
  if (words) runSearch(words).catch((error) => say(error.message, true));
});
