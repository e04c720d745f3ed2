// Renders the screens the agent sends over SSE. All texts come from the
// agent; this file only puts them on the page.
"use strict";
(function () {
  var title = document.getElementById("title");
  var detail = document.getElementById("detail");
  var amount = document.getElementById("amount");
  var qr = document.getElementById("qr");
  var lastSeq = -1;

  function render(s) {
    document.body.dataset.state = s.state;
    document.body.dataset.tone = s.tone;
    document.documentElement.lang = s.lang;
    title.textContent = s.title;
    detail.textContent = s.detail;
    detail.hidden = !s.detail;
    amount.textContent = s.amount;
    amount.hidden = !s.amount;
    // The receipt's QR code, drawn by the agent (a PNG data URL).
    if (s.qr) {
      qr.src = s.qr;
    } else {
      qr.removeAttribute("src");
    }
    qr.hidden = !s.qr;
    lastSeq = s.seq;
  }

  function connect() {
    var es = new EventSource("events");
    es.addEventListener("screen", function (e) {
      document.body.classList.remove("offline");
      render(JSON.parse(e.data));
    });
    es.onopen = function () { document.body.classList.remove("offline"); };
    es.onerror = function () {
      document.body.classList.add("offline");
      // The browser retries by itself unless the stream was refused
      // outright; then start over after a second.
      if (es.readyState === EventSource.CLOSED) {
        setTimeout(connect, 1000);
      }
    };
  }
  connect();
  window.kioskdLastSeq = function () { return lastSeq; };
})();
