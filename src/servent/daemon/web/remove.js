// servent web UI: the remove dialog.  Uses api(), say() and refresh() from app.js.
// Deleting files is opt-in, and when the node keeps them (a shared folder is the
// user's own) the dialog stays open with the node's reason.
"use strict";

function askRemove(id, name) {
  const dialog = $("#remove-dialog");
  const form = $("form", dialog);
  dialog.dataset.id = id;
  dialog.dataset.name = name;
  $(".title", dialog).textContent = `Remove "${name}"?`;
  form.delete_data.checked = false;
  form.delete_data.disabled = false;
  $(".answer", dialog).hidden = true;
  $('[value="confirm"]', dialog).hidden = false;
  $('[value="cancel"]', dialog).textContent = "Cancel";
  dialog.showModal();
}

/** The node's answer to a removal.  When files were asked to go but stayed (a shared
 * folder is the user's own), the dialog stays open and says why. */
async function confirmRemove(dialog) {
  const { id, name } = dialog.dataset;
  const form = $("form", dialog);
  const withData = form.delete_data.checked;
  const answerBox = $(".answer", dialog);
  let answer;
  try {
    answer = await api("DELETE", `/api/torrents/${id}?delete_data=${withData}`);
  } catch (e) {
    answerBox.textContent = e.message;
    answerBox.className = "answer message error";
    answerBox.hidden = false;
    return;
  }
  const deleted = answer.data_deleted ?? answer.deleted_data;  // older nodes: deleted_data
  if (withData && (deleted === false || answer.reason)) {
    $(".title", dialog).textContent = `"${name}" removed`;
    answerBox.textContent = keptText(name, answer, deleted);
    answerBox.className = "answer message";
    answerBox.hidden = false;
    form.delete_data.disabled = true;
    $('[value="confirm"]', dialog).hidden = true;
    $('[value="cancel"]', dialog).textContent = "Close";
  } else {
    dialog.close();
    const count = answer.deleted_files ? plural(answer.deleted_files, "downloaded file")
      : "its downloaded files";
    say(withData ? `Removed "${name}" and deleted ${count}.` : `Removed "${name}"; its files are kept.`);
  }
  await refresh();
}

/** What the node kept and why, in its own words (``reason``) when it gave them. */
function keptText(name, answer, deleted) {
  const reason = answer.reason || "the node kept them";
  if (deleted === false) return `Removed "${name}" from servent but kept its files: ${reason}.`;
  const gone = answer.deleted_files ? plural(answer.deleted_files, "file") : "some files";
  return `Removed "${name}" and deleted ${gone}; not all: ${reason}.`;
}
