// The chat page: one WebSocket to /ws, one text message per line, the same
// lines and commands as a telnet client.  Every text is shown with
// textContent, never parsed as HTML.
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var messages = $("messages"), membersList = $("members"), roomsList = $("rooms");
  var status = $("status"), roomLabel = $("room");
  var socket = null, me = null, room = "#lobby", members = [];
  var wantedNick = null, wantedRoom = null, retry = 0, everConnected = false;
  var MAX_LINES = 2000;

  function show(text, kind) {
    var atBottom = messages.scrollTop + messages.clientHeight >= messages.scrollHeight - 4;
    var div = document.createElement("div");
    div.textContent = text;
    if (kind) { div.className = kind; }
    messages.appendChild(div);
    while (messages.childNodes.length > MAX_LINES) { messages.removeChild(messages.firstChild); }
    if (atBottom) { messages.scrollTop = messages.scrollHeight; }
  }

  function setStatus(text, down) {
    status.textContent = text;
    status.className = down ? "status down" : "status";
  }

  function renderMembers() {
    membersList.textContent = "";
    members.slice().sort(function (a, b) { return a.toLowerCase() < b.toLowerCase() ? -1 : 1; })
      .forEach(function (nick) {
        var li = document.createElement("li");
        li.textContent = nick === me ? nick + " (you)" : nick;
        membersList.appendChild(li);
      });
  }

  function renderRooms(names) {
    roomsList.textContent = "";
    names.forEach(function (entry) {
      var li = document.createElement("li");
      li.textContent = entry;
      li.addEventListener("click", function () { send("/join " + entry.split(" ")[0]); });
      roomsList.appendChild(li);
    });
  }

  function setRoom(name) {
    room = name;
    roomLabel.textContent = name;
  }

  function send(line) {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(line);
      return true;
    }
    show("! Not connected: not sent.", "error");
    return false;
  }

  function without(nick) {
    return members.filter(function (m) { return m !== nick; });
  }

  // What a line from the server says about who is where.
  function track(line) {
    var m;
    if ((m = /^\* Welcome, (\S+)! You are in (#\S+)\./.exec(line))) {
      me = m[1]; setRoom(m[2]); members = [me];
      if (wantedNick && wantedNick !== me) { socket.send("/nick " + wantedNick); }
      if (wantedRoom && wantedRoom.toLowerCase() !== room.toLowerCase()) { socket.send("/join " + wantedRoom); }
      else { socket.send("/who"); }
      return "info";
    }
    if ((m = /^\* You are now in (#\S+)\.$/.exec(line))) {
      setRoom(m[1]); wantedRoom = m[1]; members = [me]; renderMembers(); socket.send("/who");
      return "info";
    }
    if ((m = /^\* You are now (\S+)\.$/.exec(line))) {
      members = without(me); me = m[1]; wantedNick = me; members.push(me); $("nick").value = me;
      renderMembers();
      return "info";
    }
    if ((m = /^\* In (#\S+) \(\d+\): (.*)$/.exec(line))) {
      if (m[1].toLowerCase() === room.toLowerCase()) {
        members = m[2] ? m[2].split(", ") : [];
        renderMembers();
      }
      return "info";
    }
    if ((m = /^\* Rooms: (.*)$/.exec(line))) {
      renderRooms(m[1] ? m[1].split(", ") : []);
      return "info";
    }
    if ((m = /^\* (\S+) joined$/.exec(line))) {
      members = without(m[1]); members.push(m[1]); renderMembers();
      return "info";
    }
    if ((m = /^\* (\S+) left \(/.exec(line))) {
      members = without(m[1]); renderMembers();
      return "info";
    }
    if ((m = /^\* (\S+) is now (\S+)$/.exec(line))) {
      members = without(m[1]); members.push(m[2]); renderMembers();
      return "info";
    }
    if (line.charAt(0) === "!" || line.indexOf("error: ") === 0) { return "error"; }
    if (/^(-> )?\*\S+\* /.test(line)) { return "private"; }
    if (line.indexOf("* ") === 0) { return "info"; }
    return "";
  }

  function connect() {
    var scheme = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(scheme + "//" + location.host + "/ws");
    socket.onopen = function () {
      retry = 0;
      setStatus(everConnected ? "reconnected" : "connected", false);
      if (everConnected) { show("* Reconnected.", "info"); }
      everConnected = true;
    };
    socket.onmessage = function (event) {
      var line = String(event.data);
      show(line, track(line));
    };
    socket.onclose = function () {
      socket = null;
      var delay = Math.min(5, 1 + retry);
      retry += 1;
      setStatus("disconnected: reconnecting in " + delay + " s…", true);
      if (everConnected && retry === 1) { show("! Connection lost: reconnecting…", "error"); }
      setTimeout(connect, delay * 1000);
    };
  }

  $("say-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var input = $("say"), line = input.value;
    if (!line) { return; }
    if (send(line)) {
      input.value = "";
      if (line.charAt(0) !== "/" ) { show("<" + me + "> " + line, "mine"); }
      else if (line.indexOf("//") === 0) { show("<" + me + "> " + line.slice(1), "mine"); }
      else if (/^\/me /i.test(line)) { show("* " + me + " " + line.slice(4), "mine"); }
    }
  });
  $("nick-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var nick = $("nick").value.trim();
    if (nick) { send("/nick " + nick); }
  });
  $("join-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var name = $("join").value.trim();
    if (name) { send("/join " + name); $("join").value = ""; }
  });
  $("refresh-rooms").addEventListener("click", function () { send("/rooms"); });
  connect();
}());
