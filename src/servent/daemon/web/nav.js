// servent web UI: the count of unread messages on the "Messages" link of every view.
// The count is the node's (GET /api/messages/unread): a page asks again when its event
// stream says a message arrived or when it is shown again, and a page that marks
// messages read tells the other open pages at once through a BroadcastChannel.
"use strict";

const unreadChannel = "BroadcastChannel" in window ? new BroadcastChannel("servent-unread") : null;

/** The number of unread messages in the node's answer: direct and broadcast together. */
function unreadTotal(counts) {
  let total = 0;
  for (const group of [counts.direct || {}, counts.channels || {}]) {
    for (const n of Object.values(group)) total += n;
  }
  return total;
}

function showUnread(counts) {
  const link = document.querySelector('[data-testid="nav-messages"]');
  const badge = document.querySelector('[data-testid="nav-unread"]');
  if (!link || !badge) return;
  const total = unreadTotal(counts);
  badge.textContent = String(total);
  badge.hidden = total === 0;
  const words = total === 1 ? "1 unread message" : `${total} unread messages`;
  link.setAttribute("aria-label", total ? `Messages, ${words}` : "Messages");
}

async function refreshUnread() {
  showUnread(await api("GET", "/api/messages/unread"));
}

/** This page changed what is read: show it here and on every other open page. */
function announceUnread(counts) {
  showUnread(counts);
  if (unreadChannel) unreadChannel.postMessage(counts);
}

if (unreadChannel) unreadChannel.onmessage = (event) => showUnread(event.data);
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && token) refreshUnread().catch(() => {});
});
window.addEventListener("pageshow", (event) => {
  if (event.persisted && token) refreshUnread().catch(() => {});  // back from the cache
});
