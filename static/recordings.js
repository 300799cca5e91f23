// Starts the vendored asciinema-player (static/asciinema-player.js, 2.6.1) on every
// recording of the page, from its data-cast URL: no inline script, so the
// Content-Security-Policy stays strict.
"use strict";
document.querySelectorAll(".cast-player[data-cast]").forEach(function (element) {
  asciinema.player.js.CreatePlayer(element, element.dataset.cast, { preload: true, fontSize: "small" });
});
