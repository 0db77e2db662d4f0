// servent web UI helpers with no knowledge of the API: numbers and words as
// people read them, and copying text to the clipboard.
"use strict";

/** "1 peer", "2 peers", "0 files": the count and the word that agrees with it. */
function plural(n, singular, pluralForm = singular + "s") {
  return `${n} ${n === 1 ? singular : pluralForm}`;
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

function since(epochSeconds) {
  return new Date(epochSeconds * 1000).toLocaleString();
}

/** Copy with the old selection trick: works where the Clipboard API is missing
 * (pages served over plain http from another machine are not a secure context). */
function copyBySelection(text) {
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.appendChild(area);
  area.select();
  let copied = false;
  try { copied = document.execCommand("copy"); } catch (e) { copied = false; }
  area.remove();
  return copied;
}

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try { await navigator.clipboard.writeText(text); return true; } catch (e) { /* below */ }
  }
  return copyBySelection(text);
}

/** A copy button's click: copy ``text()`` and say on the button whether it worked. */
function wireCopyButton(button, text) {
  button.onclick = async () => {
    const value = text();
    if (!value) return;
    const copied = await copyText(value);
    button.textContent = copied ? "Copied" : "Copy failed: select the link and press Ctrl+C";
    button.classList.toggle("copied", copied);
    clearTimeout(button.resetTimer);
    button.resetTimer = setTimeout(() => {
      button.textContent = "Copy";
      button.classList.remove("copied");
    }, 2000);
  };
}
