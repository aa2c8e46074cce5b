// The live tail: records as Server-Sent Events from /tail/events, shown as
// text (textContent), filtered in the page, at most `keep` records kept.
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var out = $("records"), status = $("status"), counts = $("counts");
  var token = new URLSearchParams(location.search).get("token") || "";
  var records = [], paused = false, received = 0, skipped = 0, held = 0;

  function keep() {
    var n = parseInt($("keep").value, 10);
    return isNaN(n) ? 1000 : Math.max(10, Math.min(100000, n));
  }

  // TIME SP PEER SP PAYLOAD (text records); JSON records have "peer".
  function peerOf(record) {
    if (record.charAt(0) === "{") {
      try { return String(JSON.parse(record).peer || ""); } catch (e) { return ""; }
    }
    return record.split(" ", 2)[1] || "";
  }

  function matches(record) {
    var peer = $("peer").value, text = $("text").value;
    return (!peer || peerOf(record).indexOf(peer) !== -1) && (!text || record.indexOf(text) !== -1);
  }

  function render() {
    var shown = records.filter(matches);
    out.textContent = shown.length ? shown.join("\n") + "\n" : "";
    counts.textContent = received + " received, " + shown.length + " shown of " + records.length + " kept" +
      (skipped ? ", " + skipped + " skipped by the server (this page was too slow)" : "") +
      (paused ? ", paused (" + held + " new)" : "");
    if (!paused) { out.scrollTop = out.scrollHeight; }
  }

  var pending = false;
  function later() {
    if (!pending) { pending = true; requestAnimationFrame(function () { pending = false; render(); }); }
  }

  function add(record) {
    received += 1;
    records.push(record);
    var limit = keep();
    if (records.length > limit) { records.splice(0, records.length - limit); }
    if (paused) { held += 1; counts.textContent = received + " received, paused (" + held + " new)"; return; }
    later();
  }

  function connect() {
    var source = new EventSource("/tail/events?token=" + encodeURIComponent(token));
    source.onopen = function () { status.textContent = "live"; status.className = "status"; };
    source.onmessage = function (event) { add(event.data); };
    source.addEventListener("skipped", function (event) { skipped += parseInt(event.data, 10) || 0; later(); });
    source.onerror = function () {
      status.textContent = "disconnected: reconnecting…";
      status.className = "status down";
      if (source.readyState === EventSource.CLOSED) { setTimeout(connect, 2000); }
    };
  }

  $("pause").addEventListener("click", function () {
    paused = !paused;
    held = 0;
    $("pause").textContent = paused ? "Resume" : "Pause";
    render();
  });
  $("clear").addEventListener("click", function () { records = []; render(); });
  ["peer", "text", "keep"].forEach(function (id) { $(id).addEventListener("input", later); });
  $("filters").addEventListener("submit", function (event) { event.preventDefault(); });
  connect();
}());
