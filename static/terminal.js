"use strict";
// The browser terminal behind the Connection icon (and, with data-follow, an administrator
// watching a connection live): xterm.js over a WebSocket to the same
// upstream path as the SSH gateway. Binary frames carry the terminal's bytes both ways; text
// frames carry JSON control messages: {"type":"resize","cols":..,"rows":..} from here,
// {"type":"closed","reason":".."} from the server.
(function browserTerminal() {
  const box = document.getElementById("terminal");
  const status = document.getElementById("terminal-status");
  if (!box || !window.Terminal || !("WebSocket" in window)) {
    return;
  }

  function say(text) {
    if (status) {
      status.textContent = text;
    }
  }

  // xterm.js writes its measured sizes and colours into <style> elements, which our
  // Content-Security-Policy (style-src 'self') refuses. The same rules are applied as
  // constructed style sheets instead, which the policy allows.
  const sheets = new Map();
  function adopt(element) {
    let sheet = sheets.get(element);
    if (!sheet) {
      sheet = new CSSStyleSheet();
      sheets.set(element, sheet);
      document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
    }
    sheet.replaceSync(element.textContent || "");
  }
  function adoptAll() {
    box.querySelectorAll("style").forEach(adopt);
  }
  new MutationObserver(adoptAll).observe(box, {
    childList: true,
    subtree: true,
    characterData: true,
  });

  const term = new window.Terminal({
    cursorBlink: true,
    fontFamily: "ui-monospace, 'DejaVu Sans Mono', Menlo, Consolas, monospace",
    fontSize: 14,
    scrollback: 5000,
  });
  const fit = new window.FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(box);
  adoptAll();
  fit.fit();

  if (box.dataset.follow) {
    follow(box.dataset.follow);
    return;
  }

  // Watching (administrators): the recording's events as they are written, polled once a
  // second; "o" events are drawn, "r" events resize. Input events are not drawn.
  function follow(path) {
    let next = 0;
    let sized = false;
    async function poll() {
      let since = null;
      try {
        const response = await fetch(path + "?from=" + next, { credentials: "same-origin" });
        if (response.ok) {
          since = await response.json();
        }
      } catch (_) {
        since = null;
      }
      if (since) {
        if (!sized) {
          term.resize(since.width, since.height);
          sized = true;
        }
        for (const line of since.events.split("\n")) {
          if (!line) {
            continue;
          }
          const [, code, data] = JSON.parse(line);
          if (code === "o") {
            term.write(data);
          } else if (code === "r") {
            const [cols, rows] = data.split("x").map(Number);
            if (cols > 0 && rows > 0) {
              term.resize(cols, rows);
            }
          }
        }
        next = since.next;
        box.dataset.state = since.ended ? "closed" : "open";
        if (since.ended) {
          say("This connection has ended: " + (since.end_reason || ""));
          return;
        }
      }
      window.setTimeout(poll, since && since.more ? 0 : 1000);
    }
    poll();
  }

  const url = new URL(box.dataset.socket, window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("cols", String(term.cols));
  url.searchParams.set("rows", String(term.rows));
  const socket = new WebSocket(url);
  socket.binaryType = "arraybuffer";
  const encoder = new TextEncoder();
  let closedReason = "";

  socket.addEventListener("open", () => {
    say("Connected.");
    box.dataset.state = "open";
    term.focus();
  });
  socket.addEventListener("message", (event) => {
    if (typeof event.data === "string") {
      let message = null;
      try {
        message = JSON.parse(event.data);
      } catch (_) {
        return;
      }
      if (message && message.type === "closed") {
        closedReason = String(message.reason || "");
      }
      return;
    }
    term.write(new Uint8Array(event.data));
  });
  socket.addEventListener("close", () => {
    const reason = closedReason || "The connection was closed.";
    term.write("\r\n\x1b[1m" + reason + "\x1b[0m\r\n");
    say(reason);
    box.dataset.state = "closed";
  });

  term.onData((data) => {
    if (socket.readyState === WebSocket.OPEN) {
      socket.send(encoder.encode(data));
    }
  });
  term.onResize(({ cols, rows }) => {
    if (socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: "resize", cols, rows }));
    }
  });
  window.addEventListener("resize", () => fit.fit());
})();
