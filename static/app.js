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

// Connect page: copy buttons, launch reports, the revealed password's timer, the countdown.
(function connectPage() {
  const panel = document.getElementById("connect");
  if (!panel) {
    return;
  }
  const region = document.getElementById("live-status");
  const announce = (text) => {
    if (region) {
      region.textContent = text;
    }
  };

  function report(how) {
    const body = new URLSearchParams({ csrf_token: panel.dataset.csrf, how, background: "1" });
    const url = `/sessions/${encodeURIComponent(panel.dataset.session)}/launch`;
    if (!(navigator.sendBeacon && navigator.sendBeacon(url, body))) {
      fetch(url, { method: "POST", body, credentials: "same-origin", keepalive: true }).catch(() => {});
    }
  }

  async function copy(text) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch (_) {
      const area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "visually-hidden";
      document.body.appendChild(area);
      area.select();
      const done = document.execCommand("copy");
      area.remove();
      return done;
    }
  }

  panel.querySelectorAll("[data-copy]").forEach((button) => {
    button.addEventListener("click", async () => {
      const source = document.querySelector(button.dataset.copy);
      if (!source) {
        return;
      }
      const ok = await copy(source.textContent);
      button.textContent = ok ? "Copied" : "Copy failed";
      announce(ok ? "Copied to the clipboard." : "Could not copy: select the text and copy it.");
      window.setTimeout(() => { button.textContent = "Copy"; }, 2000);
      if (button.dataset.launch) {
        report(button.dataset.launch);
      }
    });
  });
  panel.querySelectorAll("a[data-launch]").forEach((link) => {
    link.addEventListener("click", () => report(link.dataset.launch));
  });

  const secret = document.querySelector("[data-hide-after]");
  if (secret) {
    const seconds = Number(secret.dataset.hideAfter) || 20;
    window.setTimeout(() => {
      secret.textContent = "••••••••••••";
      secret.setAttribute("aria-label", "Password hidden");
      const button = document.getElementById("copy-password");
      if (button) {
        button.remove();
      }
      const hint = document.getElementById("password-hint");
      if (hint) {
        hint.textContent = "Hidden again. Reveal once more to see it.";
      }
      announce("The password is hidden again.");
    }, seconds * 1000);
  }

  const countdown = panel.querySelector("[data-countdown]");
  if (countdown) {
    const ends = Number(countdown.dataset.countdown) * 1000;
    const banner = document.getElementById("ending-soon");
    const tick = () => {
      const left = Math.max(0, ends - Date.now());
      const minutes = Math.floor(left / 60000);
      const seconds = Math.floor((left % 60000) / 1000);
      countdown.textContent = left > 0
        ? `${minutes}:${String(seconds).padStart(2, "0")} left`
        : "the window has ended";
      if (banner && left <= 10 * 60 * 1000 && banner.hidden) {
        banner.hidden = false;
        announce("This session ends in ten minutes or less.");
      }
    };
    tick();
    window.setInterval(tick, 1000);
  }
})();
