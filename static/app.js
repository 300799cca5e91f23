"use strict";
// Progressive enhancement only: every page works without this script.

// Live status on the Dashboard and Approvals tables: the server relays status changes as
// server-sent events; a changed status cell is updated at once, then the table body is
// reloaded in the background so rows that arrive or leave the tab appear or disappear.
// Changes are announced through the page's ARIA live region.
(function liveStatus() {
  const table = document.querySelector("table[data-live]");
  if (!table || !("EventSource" in window)) {
    return;
  }
  const region = document.getElementById("live-status");
  let timer = null;

  function announce(text) {
    if (region) {
      region.textContent = text;
    }
  }

  async function reloadRows() {
    let response;
    try {
      response = await fetch(window.location.href, {
        credentials: "same-origin",
        headers: { "X-Portcullis-Refresh": "1" },
      });
    } catch (_) {
      return;
    }
    if (!response.ok) {
      return;
    }
    const doc = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = doc.querySelector("table[data-live]");
    if (!fresh) {
      return;
    }
    const ticked = new Set(
      Array.from(table.querySelectorAll("tbody input[type=checkbox]:checked"), (box) => box.value),
    );
    const body = table.querySelector("tbody");
    const freshBody = fresh.querySelector("tbody");
    if (body && freshBody) {
      body.replaceWith(document.importNode(freshBody, true));
    }
    const caption = table.querySelector("caption");
    const freshCaption = fresh.querySelector("caption");
    if (caption && freshCaption) {
      caption.innerHTML = freshCaption.innerHTML;
    }
    table.querySelectorAll("tbody input[type=checkbox]").forEach((box) => {
      box.checked = ticked.has(box.value);
    });
  }

  function scheduleReload() {
    window.clearTimeout(timer);
    timer = window.setTimeout(reloadRows, 250);
  }

  const source = new EventSource("/events");
  source.addEventListener("session", (event) => {
    let change;
    try {
      change = JSON.parse(event.data);
    } catch (_) {
      return;
    }
    const row = table.querySelector(`tr[data-session="${CSS.escape(change.session)}"]`);
    const badge = row && row.querySelector(".status");
    if (badge) {
      badge.textContent = change.label;
      badge.className = `status status-${change.status}`;
    }
    announce(`${change.resource}: ${change.label}`);
    scheduleReload();
  });
  source.addEventListener("resync", scheduleReload);
})();
