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

// ---- Admin checkbox pickers (begin) ------------------------------------------------------
// Every fieldset[data-picker] (the `picker` macro of templates/admin/macros.html) is a list
// of checkboxes with a server-side Search that works without this script. Here the list also
// narrows as the administrator types, says how many entries are ticked, and can show only the
// ticked ones or untick them all. Entries are hidden, never removed, so a ticked entry that
// the filter hides is still posted with the form. The page lists a bounded number of entries
// (data-more says how many matching ones it left out, and a server search narrows what it
// lists), so when the list is incomplete the message says so and Enter runs the server Search.
(function checkboxPickers() {
  document.querySelectorAll("fieldset[data-picker]").forEach((picker) => {
    const list = picker.querySelector("ul.choices");
    const search = picker.querySelector("input[type=search]");
    const searchButton = picker.querySelector("button[value=search]");
    if (!list || !search || !picker.id) {
      return;
    }
    const items = Array.from(list.querySelectorAll("input[type=checkbox]"), (box) => ({
      box,
      item: box.closest("li"),
      text: (box.closest("label") || box).textContent.replace(/\s+/g, " ").trim().toLowerCase(),
    }));
    if (items.length === 0) {
      return;
    }
    // The server left entries out: it lists at most a few hundred, or it ran a search.
    const incomplete = Number(picker.dataset.more) > 0 || search.defaultValue.trim() !== "";

    // Several pickers share a page: the legend, read but not shown, tells their controls apart.
    const legend = picker.querySelector("legend");
    const which = () => {
      const span = document.createElement("span");
      span.className = "visually-hidden";
      span.textContent = legend ? ` (${legend.textContent.trim()})` : "";
      return span;
    };
    const controls = document.createElement("div");
    controls.className = "toolbar";
    const only = document.createElement("input");
    only.type = "checkbox";
    only.id = `${picker.id}-only`;
    const onlyLabel = document.createElement("label");
    onlyLabel.htmlFor = only.id;
    onlyLabel.append(only, " Show selected only", which());
    const clear = document.createElement("button");
    clear.type = "button";
    clear.append("Clear selection", which());
    const count = document.createElement("span");
    count.id = `${picker.id}-count`;
    count.className = "muted";
    count.setAttribute("aria-live", "polite");
    controls.append(onlyLabel, clear, count);

    const shown = document.createElement("p");
    shown.id = `${picker.id}-shown`;
    shown.className = "hint";
    shown.setAttribute("aria-live", "polite");
    shown.hidden = true;

    const toolbar = search.closest(".toolbar");
    (toolbar || search).after(controls);
    list.after(shown);
    if (!list.id) {
      list.id = `${picker.id}-list`;
    }
    search.setAttribute("aria-controls", list.id);
    search.setAttribute("aria-describedby", shown.id);
    // The server's "nothing matches" line stands only for the server's own search.
    const serverEmpty = list.querySelector("li.muted");

    function countTicked() {
      const ticked = items.filter((i) => i.box.checked).length;
      count.textContent = `${ticked} selected`;
      clear.disabled = ticked === 0;
    }

    function applyFilter() {
      const words = search.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
      let visible = 0;
      items.forEach((i) => {
        const match = words.every((w) => i.text.includes(w)) && (!only.checked || i.box.checked);
        i.item.hidden = !match;
        if (match) {
          visible += 1;
        }
      });
      if (serverEmpty) {
        serverEmpty.hidden = true;
      }
      const filtering = words.length > 0 || only.checked;
      let text = "";
      if (filtering) {
        text = visible === 0
          ? "Nothing in this list matches."
          : `Showing ${visible} of ${items.length}.`;
        if (incomplete && words.length > 0) {
          text += " Not every entry is listed here: press Search to look among all of them.";
        }
      }
      shown.textContent = text;
      shown.hidden = text === "";
    }

    let timer = null;
    search.addEventListener("input", () => {
      window.clearTimeout(timer);
      timer = window.setTimeout(applyFilter, 150);
    });
    // Enter in the search field would submit the whole form with its default (Save) button.
    search.addEventListener("keydown", (event) => {
      if (event.key !== "Enter") {
        return;
      }
      event.preventDefault();
      window.clearTimeout(timer);
      if (incomplete && searchButton) {
        searchButton.click();
      } else {
        applyFilter();
      }
    });
    only.addEventListener("change", applyFilter);
    list.addEventListener("change", countTicked);
    clear.addEventListener("click", () => {
      items.forEach((i) => { i.box.checked = false; });
      countTicked();
      applyFilter();
      search.focus();
    });
    countTicked();
  });
})();
// ---- Admin checkbox pickers (end) --------------------------------------------------------

// Recovery codes page: copy every code, one a line (issue 16). The button shows only when
// this script runs; without it, the codes can be selected or downloaded.
(function recoveryCodes() {
  const button = document.querySelector("[data-copy-codes]");
  const list = button && document.querySelector(button.dataset.copyCodes);
  if (!list) {
    return;
  }
  const region = document.getElementById("live-status");
  button.hidden = false;
  button.addEventListener("click", async () => {
    const text = Array.from(list.querySelectorAll("li"), (li) => li.textContent.trim()).join("\n") + "\n";
    let ok = true;
    try {
      await navigator.clipboard.writeText(text);
    } catch (_) {
      const area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "visually-hidden";
      document.body.appendChild(area);
      area.select();
      ok = document.execCommand("copy");
      area.remove();
    }
    button.textContent = ok ? "Copied" : "Copy failed";
    if (region) {
      region.textContent = ok ? "The recovery codes are copied to the clipboard." : "Could not copy: select the codes and copy them.";
    }
    window.setTimeout(() => { button.textContent = "Copy codes"; }, 2000);
  });
})();

// ---- Wizard (issue 16) (begin) -----------------------------------------------------------
// Progressive enhancement of the Activity Request wizard; every page works without it.
(function wizard() {
  // Request Type: the activity list narrows as you type (the server's Search still works,
  // and finds what a narrowed list would not).
  const activityList = document.getElementById("activity-list");
  const activitySearch = activityList && document.querySelector("input#q[aria-controls=activity-list]");
  if (activityList && activitySearch) {
    const shown = document.getElementById("activity-shown");
    const items = Array.from(activityList.querySelectorAll("li"), (item) => ({
      item,
      text: item.textContent.replace(/\s+/g, " ").trim().toLowerCase(),
    }));
    const serverEmpty = document.getElementById("activity-empty");
    const filter = () => {
      const words = activitySearch.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
      let visible = 0;
      items.forEach((i) => {
        const match = words.every((w) => i.text.includes(w));
        // A ticked choice stays visible: a hidden ticked radio would be posted unseen.
        const checked = i.item.querySelector("input:checked");
        i.item.hidden = !match && !checked;
        if (!i.item.hidden) {
          visible += 1;
        }
      });
      if (serverEmpty && words.length > 0) {
        serverEmpty.hidden = true;
      }
      if (shown) {
        if (words.length === 0) {
          shown.textContent = "";
        } else if (visible === 0) {
          shown.textContent = `No activities match “${activitySearch.value.trim()}”. Press Search to look again on the server.`;
        } else {
          shown.textContent = `Showing ${visible} of ${items.length}.`;
        }
      }
    };
    let timer = null;
    activitySearch.addEventListener("input", () => {
      window.clearTimeout(timer);
      timer = window.setTimeout(filter, 100);
    });
  }

  // Resource Selection: a live "N selected" count, Select all on this page, and a click
  // anywhere on a row toggles its checkbox.
  const table = document.querySelector("table.pick-rows");
  const count = document.getElementById("ticked-count");
  if (table && count) {
    const boxes = Array.from(table.querySelectorAll("tbody input[type=checkbox][name=pick]"));
    const elsewhere = Number(count.dataset.elsewhere) || 0;
    const update = () => {
      const ticked = elsewhere + boxes.filter((b) => b.checked).length;
      count.textContent = `${ticked} selected.`;
    };
    table.addEventListener("change", update);
    table.addEventListener("click", (event) => {
      const row = event.target.closest("tbody tr");
      if (!row || event.target.closest("input, label, a, button")) {
        return;
      }
      const box = row.querySelector("input[type=checkbox][name=pick]");
      if (box) {
        box.checked = !box.checked;
        update();
      }
    });
    const selectPage = document.getElementById("select-page");
    if (selectPage) {
      selectPage.addEventListener("click", (event) => {
        event.preventDefault();
        boxes.forEach((b) => { b.checked = true; });
        update();
      });
    }
  }

  // Scheduling: the window line follows the date and time as they are picked (the server
  // works it out in the requester's time zone, as it does when the page is posted).
  const windowText = document.getElementById("window-text");
  const when = document.querySelectorAll("input[name=when]");
  const date = document.getElementById("date");
  const time = document.getElementById("time");
  if (windowText && date && time && when.length > 0) {
    let asked = 0;
    const refresh = async () => {
      const chosen = document.querySelector("input[name=when]:checked");
      const params = new URLSearchParams({
        when: chosen ? chosen.value : "now",
        date: date.value,
        time: time.value,
      });
      const mine = ++asked;
      try {
        const response = await fetch(`/wizard/scheduling/window?${params}`, { credentials: "same-origin" });
        const text = response.ok ? await response.text() : "";
        if (mine === asked && text) {
          windowText.textContent = text;
        }
      } catch (_) {
        // Offline: the line stays as it was; Next still checks the time.
      }
    };
    const pickLater = () => {
      const later = document.querySelector("input[name=when][value=later]");
      if (later && (date.value || time.value)) {
        later.checked = true;
      }
    };
    [date, time].forEach((input) => {
      input.addEventListener("input", () => { pickLater(); refresh(); });
      input.addEventListener("change", () => { pickLater(); refresh(); });
    });
    when.forEach((radio) => radio.addEventListener("change", refresh));
  }
})();
// ---- Wizard (issue 16) (end) -------------------------------------------------------------
