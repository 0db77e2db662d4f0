// servent web UI: the remove dialog.  Uses api(), say() and refresh() from app.js.
// Deleting files is opt-in, and when the node keeps them (a shared folder is the
// user's own) the dialog stays open with the node's reason.
"use strict";

function askRemove(id, name) {
  const dialog = $("#remove-dialog");
  const form = $("form", dialog);
  dialog.dataset.id = id;
  dialog.dataset.name = name;
  $(".target", dialog).textContent = `"${name}"`;
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
  const deleted = answer.data_deleted ?? answer.deleted_data;
  if (withData && deleted === false) {
    answerBox.textContent = `Removed "${name}" from servent; its files were not deleted: ` +
      (answer.reason || "the node kept them.");
    answerBox.className = "answer message";
    answerBox.hidden = false;
    form.delete_data.disabled = true;
    $('[value="confirm"]', dialog).hidden = true;
    $('[value="cancel"]', dialog).textContent = "Close";
  } else {
    dialog.close();
    say(withData ? `Removed "${name}" and deleted its downloaded files.`
      : `Removed "${name}"; its files are kept.`);
  }
  await refresh();
}
