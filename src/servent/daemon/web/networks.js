// servent web UI, Networks view: create and join invite-only networks, make invitations
// (with a copy button), see members, promote, demote and revoke them. Plain JavaScript; the token is the
// one the main view keeps (api.js); the nav's unread badge comes from nav.js.
"use strict";

const q = (sel, root = document) => root.querySelector(sel);
let networks = [];
let current = null; // the chosen network's ID

function showLogin() { q("#login").hidden = false; q("#networks-app").hidden = true; }

function say(text, isError = false) {
  const el = q("#message");
  el.textContent = text;
  el.className = "message" + (isError ? " error" : "");
}

async function act(fn) {
  try { await fn(); } catch (e) { say(e.message, true); }
}

const path = (id, tail = "") => `/api/networks/${encodeURIComponent(id)}${tail}`;
const chosen = () => networks.find((n) => n.id === current) || null;

function renderList() {
  const list = q("#network-list");
  list.replaceChildren();
  for (const network of networks) {
    const li = document.createElement("li");
    li.dataset.testid = "network";
    li.dataset.id = network.id;
    li.textContent = `${network.name} (${network.members})`;
    if (network.id === current) li.className = "active";
    li.onclick = () => act(() => choose(network.id));
    list.append(li);
  }
  if (!networks.length) {
    const li = document.createElement("li");
    li.textContent = "none yet: create one or join with an invitation";
    list.append(li);
  }
}

// A member's action button: runs fn, then shows the network as it is now.
function button(testid, label, fn) {
  const el = document.createElement("button");
  el.type = "button";
  el.dataset.testid = testid;
  el.textContent = label;
  el.onclick = () => act(async () => { await fn(); await refresh(); });
  return el;
}

function memberItem(member, admin) {
  const li = document.createElement("li");
  li.dataset.testid = "member";
  li.dataset.id = member.id;
  const who = document.createElement("span");
  who.textContent = `${member.name || member.id.slice(0, 12) + "…"} `;
  const tag = document.createElement("span");
  tag.className = "tag";
  tag.textContent = [member.admin ? "admin" : "", member.you ? "you" : "",
    member.connected ? "connected" : ""].filter(Boolean).join(" · ");
  who.append(tag);
  li.append(who);
  if (admin && !member.you) {
    li.append(button("revoke", "Revoke", async () => {
      if (!confirm(`Revoke ${member.name || member.id}? It will be refused by every member.`)) return;
      await api("DELETE", path(current, `/members/${encodeURIComponent(member.id)}`));
      say(`Revoked ${member.name || member.id}; the network's keys were rotated.`);
    }));
    if (!member.admin) {
      li.append(button("promote", "Promote", async () => {
        await api("POST", path(current, "/admins"), { member: member.id });
        say(`${member.name || member.id} is an admin now: it may invite and revoke.`);
      }));
    } else {
      li.append(button("demote", "Demote", async () => {
        await api("DELETE", path(current, `/admins/${encodeURIComponent(member.id)}`));
        say(`${member.name || member.id} is a plain member again.`);
      }));
    }
  }
  return li;
}

async function renderDetail() {
  const network = chosen();
  q("#invite-form").hidden = !(network && network.admin);
  q("#leave").hidden = !network;
  if (!network) {
    q("#network-title").textContent = "No network chosen";
    q("#network-facts").textContent = "";
    q("#member-list").replaceChildren();
    return;
  }
  q("#network-title").textContent = network.name;
  q("#network-facts").textContent =
    `ID ${network.id} · key epoch ${network.epoch} · ${network.admin ? "you are an admin" : "member"}`;
  const members = await api("GET", path(network.id, "/members"));
  q("#member-list").replaceChildren(...members.map((m) => memberItem(m, network.admin)));
}

async function choose(id) {
  current = id;
  q("#invite-box").hidden = true;
  renderList();
  await renderDetail();
}

async function refresh() {
  networks = await api("GET", "/api/networks");
  if (!chosen()) current = networks.length ? networks[0].id : null;
  renderList();
  await renderDetail();
}

async function copyInvite() {
  const text = q("#invite-text").textContent;
  try {
    await navigator.clipboard.writeText(text);
  } catch (e) { // no clipboard permission: select it for Ctrl+C
    const range = document.createRange();
    range.selectNodeContents(q("#invite-text"));
    getSelection().removeAllRanges();
    getSelection().addRange(range);
  }
  say("Invitation copied: send it to the person you invite (it is a secret).");
}

function wire() {
  q("#token-form").onsubmit = (event) => {
    event.preventDefault();
    localStorage.setItem("servent-token", q("#token-input").value.trim());
    location.reload();
  };
  q("#create-form").onsubmit = (event) => {
    event.preventDefault();
    act(async () => {
      const created = await api("POST", "/api/networks", { name: q("#create-name").value.trim() });
      q("#create-name").value = "";
      current = created.id;
      say(`Created ${created.name}.`);
      await refresh();
    });
  };
  q("#join-form").onsubmit = (event) => {
    event.preventDefault();
    act(async () => {
      say("Joining…");
      const joined = await api("POST", "/api/networks/join", { invite: q("#join-invite").value.trim() });
      q("#join-invite").value = "";
      current = joined.id;
      say(`Joined ${joined.name}.`);
      await refresh();
    });
  };
  q("#invite-form").onsubmit = (event) => {
    event.preventDefault();
    act(async () => {
      const body = { uses: Number(q("#invite-uses").value) || 1 };
      if (q("#invite-expires").value) body.expires = q("#invite-expires").value;
      const made = await api("POST", path(current, "/invites"), body);
      q("#invite-text").textContent = made.invite;
      q("#invite-box").hidden = false;
      say(`Invitation for ${made.uses} use(s) made.`);
    });
  };
  q("#invite-copy").onclick = () => act(copyInvite);
  q("#leave").onclick = () => act(async () => {
    const network = chosen();
    if (!network || !confirm(`Leave ${network.name}? You need a new invitation to come back.`)) return;
    await api("DELETE", path(network.id));
    current = null;
    say(`Left ${network.name}.`);
    await refresh();
  });
}

async function main() {
  apiHooks.tokenRefused = showLogin;
  takeToken();
  wire();
  if (!token) { showLogin(); return; }
  q("#networks-app").hidden = false;
  await act(refresh);
  followEvents(async (kind) => {
    if (kind === "network_member_joined" || kind === "network_member_revoked") await act(refresh);
    else if (kind === "message_received") await refreshUnread();
  }, refreshUnread);
}

main();
