// leapt trace viewer: lays out the JSON that viewer/data.py computed.
// Untrusted text (everything from traces) only ever reaches the page through
// textContent / dataset / title, never as markup.  Each problem's data sits in its
// own JSON data block (a script element of type application/json), parsed when the problem opens.
(function () {
  "use strict";
  var FOLD_AT = 1600; // characters; longer pieces start folded
  var HEAD = 700; // characters shown of a folded piece

  function $(sel, root) { return (root || document).querySelector(sel); }
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function readJSON(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }
  function shown(value) { return value === null || value === undefined ? "\u2013" : String(value); }
  function short(text, n) { text = String(text); return text.length > n ? text.slice(0, n - 1) + "\u2026" : text; }
  function count(n, one, many) { return n + " " + (n === 1 ? one : many || one + "s"); }
  function verdict(c) { return c === true ? "ok" : c === false ? "bad" : "none"; }

  var index = readJSON("leapt-index");
  var state = { group: 0, problem: null };

  function chip(answer, correct, who) {
    var c = el("span", "chip " + verdict(correct), answer === null ? "\u2205" : short(answer, 16));
    c.title = (who ? who + ": " : "") + (answer === null ? "no answer" : answer) +
      (correct === true ? " (correct)" : correct === false ? " (wrong)" : "");
    return c;
  }
  function score(correct) {
    var graded = correct.filter(function (c) { return c !== null; });
    if (!graded.length) return "\u2013";
    return graded.filter(Boolean).length + "/" + graded.length;
  }

  // ---- problem list -------------------------------------------------------------
  function haystack(p) {
    if (p._hay === undefined) {
      p._hay = [p.id, p.gold, p.problem].concat(p.answers)
        .map(function (x) { return x === null ? "" : String(x); }).join("\n").toLowerCase();
    }
    return p._hay;
  }

  function renderMeta() {
    var g = index.groups[state.group];
    var meta = $("#meta");
    meta.replaceChildren();
    meta.append(el("span", "fact", "model " + shown(g.model)), el("span", "fact", "method " + shown(g.method)));
    Object.keys(g.settings).forEach(function (k) { meta.append(el("span", "fact", k + "=" + shown(g.settings[k]))); });
  }

  function renderList() {
    var g = index.groups[state.group];
    var q = $("#search").value.trim().toLowerCase();
    var body = $("#problems tbody");
    body.replaceChildren();
    var count = 0;
    g.problems.forEach(function (p, i) {
      if (q && haystack(p).indexOf(q) < 0) return;
      count++;
      var tr = el("tr");
      tr.dataset.index = i;
      tr.tabIndex = 0;
      if (state.problem === i) tr.classList.add("current");
      var answers = el("td", "answers");
      p.answers.forEach(function (a, k) { answers.append(chip(a, p.correct[k], "path " + k)); });
      tr.append(el("td", "pid", p.id), el("td", "gold", shown(p.gold)), el("td", "score", score(p.correct)), answers);
      tr.addEventListener("click", function () { openProblem(i); });
      tr.addEventListener("keydown", function (e) { if (e.key === "Enter") openProblem(i); });
      body.append(tr);
    });
    $("#count").textContent = count + " of " + g.problems.length + " problems";
  }

  // ---- text pieces ----------------------------------------------------------------
  function setFolded(node, text, folded) {
    node.replaceChildren(document.createTextNode(folded ? text.slice(0, HEAD) : text));
    node.classList.toggle("folded", folded);
    var btn = el("button", "fold", folded ? "\u2026 show " + (text.length - HEAD) + " more characters" : "fold");
    btn.addEventListener("click", function (e) { e.stopPropagation(); setFolded(node, text, !folded); });
    node.append(btn);
  }
  function fillText(node, text) {
    node.dataset.chars = text.length;
    if (text.length > FOLD_AT) { node._text = text; setFolded(node, text, true); }
    else node.textContent = text;
  }
  function unfoldAll(root) {
    root.querySelectorAll(".folded").forEach(function (node) { setFolded(node, node._text, false); });
  }
  function piece(p) {
    var node = el("span", "piece " + p[0]);
    node.dataset.author = p[0];
    node.title = p[0] === "summary" ? "summary (model text inside the summarize tags)" : p[0];
    fillText(node, p[1]);
    return node;
  }

  // ---- one problem ---------------------------------------------------------------
  function openProblem(i) {
    state.problem = i;
    document.querySelectorAll("#problems tbody tr").forEach(function (tr) {
      tr.classList.toggle("current", Number(tr.dataset.index) === i);
    });
    var data = readJSON("leapt-d-" + state.group + "-" + i);
    renderProblem(data);
    if (history.replaceState) history.replaceState(null, "", "#g=" + state.group + "&p=" + i);
  }

  function routingAt(d, turn) {
    for (var r = 0; r < d.routing.length; r++) if (String(d.routing[r].turn) === String(turn)) return d.routing[r];
    return null;
  }

  function renderProblem(d) {
    var main = $("#detail");
    main.replaceChildren();
    main.append(el("h2", null, "Problem " + d.id));
    var facts = el("div", "facts");
    facts.append(el("span", "fact", "gold " + shown(d.gold)), el("span", "fact", count(d.paths.length, "path")),
      el("span", "fact", "LeaP turns: " + d.routing.length));
    main.append(facts);
    var q = el("div", "problem-text");
    fillText(q, d.problem);
    main.append(q);
    if (d.options && d.options.length) {
      var ol = el("ol", "options");
      d.options.forEach(function (o) { ol.append(el("li", null, o)); });
      main.append(ol);
    }
    if (d.prompt !== null) {
      var det = el("details", "shared-prompt");
      det.append(el("summary", null, "prompt (the same for every path, " + d.prompt.length + " characters)"));
      det.append(piece(["prompt", d.prompt]));
      main.append(det);
    }
    if (d.routing.length) main.append(renderRouting(d));
    main.append(renderGrid(d));
  }

  function place(node, row, col, order) {
    node.style.setProperty("--row", row);
    node.style.setProperty("--col", col);
    node.style.setProperty("--ord", order);
  }

  function renderGrid(d) {
    var wrap = el("div", "grid-wrap");
    var grid = el("div", "grid");
    grid.style.setProperty("--paths", d.paths.length);
    var corner = el("div", "corner", "");
    place(corner, 1, 1, 0);
    grid.append(corner);
    d.paths.forEach(function (p, k) {
      var h = el("div", "phdr");
      h.dataset.path = k;
      place(h, 1, k + 2, (k + 1) * 10000);
      h.append(el("strong", null, "path " + k), chip(p.answer, p.correct),
        el("span", "finish", shown(p.finish)),
        el("span", "tokens", p.tokens + " tokens (" + p.summary_tokens + " in summaries)"));
      var solo = el("button", "solo", "expand alone");
      solo.addEventListener("click", function () { toggleSolo(grid, k, solo); });
      h.append(solo);
      grid.append(h);
    });
    d.rows.forEach(function (row, r) {
      var label = el("div", "rowlabel", row.label);
      label.dataset.row = row.key;
      place(label, r + 2, 1, 1);
      grid.append(label);
      var routing = routingAt(d, row.key);
      d.paths.forEach(function (p, k) {
        var cell = el("div", "cell");
        cell.dataset.path = k;
        cell.dataset.row = row.key;
        cell.dataset.label = "path " + k + " \u00b7 " + row.label;
        place(cell, r + 2, k + 2, (k + 1) * 10000 + r + 1);
        var pieces = p.cells[row.key] || [];
        if (!pieces.length) cell.classList.add("empty");
        pieces.forEach(function (pc) {
          if (pc[0] === "peer" && routing && routing.peers[k]) cell.append(peerCaption(routing, k));
          cell.append(piece(pc));
        });
        grid.append(cell);
      });
    });
    wrap.append(grid);
    return wrap;
  }

  function peerCaption(routing, k) {
    var at = routing.paths.indexOf(k);
    var parts = routing.peers[k].map(function (q) {
      var sim = routing.similarity[at][routing.columns.indexOf(q)];
      return "path " + q + " (similarity " + simText(sim) + ")";
    });
    return el("div", "peer-caption", "reads " + (parts.length ? parts.join(", ") : "no peer"));
  }

  function toggleSolo(grid, k, button) {
    var on = !(grid.classList.contains("solo") && grid.dataset.solo === String(k));
    grid.classList.toggle("solo", on);
    grid.dataset.solo = on ? String(k) : "";
    grid.querySelectorAll("[data-path]").forEach(function (node) {
      node.classList.toggle("sel", on && node.dataset.path === String(k));
    });
    grid.querySelectorAll("button.solo").forEach(function (b) { b.textContent = "expand alone"; });
    button.textContent = on ? "show all paths" : "expand alone";
    if (on) grid.querySelectorAll('.cell.sel').forEach(unfoldAll);
  }

  // ---- routing ---------------------------------------------------------------------
  function renderRouting(d) {
    var sec = el("section", "routing");
    sec.append(el("h3", null, "Who read whom"));
    sec.append(el("p", "hint", "Per LeaP turn: a row is the reading path, a column the peer; " +
      "highlighted cells are the summaries it received. Numbers: the similarity the router uses " +
      "(1 \u2212 normalised Levenshtein distance), recomputed from the summaries in the trace " +
      "(n/a: a summary the trace does not hold)."));
    d.routing.forEach(function (rt) {
      var det = el("details", "turn-routing");
      det.dataset.turn = rt.turn;
      var edges = 0;
      Object.keys(rt.peers).forEach(function (p) { edges += rt.peers[p].length; });
      det.append(el("summary", null, "turn " + rt.turn + ": " + count(rt.paths.length, "reader") + ", " + count(edges, "summary", "summaries") + " passed"));
      det.addEventListener("toggle", function () {
        if (det.open && !det.querySelector(".routing-matrix")) det.append(matrix(rt));
      });
      sec.append(det);
    });
    return sec;
  }

  function simText(sim) { return sim === null || sim === undefined ? "n/a" : sim.toFixed(2); }

  function matrix(rt) {
    var table = el("table", "routing-matrix");
    var head = el("tr");
    head.append(el("th", "axis", "reader \u2193 / peer \u2192"));
    rt.columns.forEach(function (q) { head.append(el("th", null, q)); });
    table.append(head);
    rt.paths.forEach(function (p, a) {
      var tr = el("tr");
      tr.append(el("th", null, "path " + p));
      rt.columns.forEach(function (q, b) {
        var sim = rt.similarity[a][b];
        var td = el("td", null, p === q ? "\u2014" : simText(sim));
        td.dataset.reader = p;
        td.dataset.peer = q;
        if (rt.peers[p].indexOf(q) >= 0) {
          td.classList.add("routed");
          td.title = "path " + p + " read path " + q + "'s summary (similarity " + simText(sim) + ")";
        }
        tr.append(td);
      });
      table.append(tr);
    });
    return table;
  }

  // ---- start ----------------------------------------------------------------------
  function start() {
    var select = $("#group");
    index.groups.forEach(function (g, i) { var o = el("option", null, g.label + " (" + g.problems.length + ")"); o.value = i; select.append(o); });
    select.hidden = index.groups.length < 2;
    select.addEventListener("change", function () {
      state.group = Number(select.value);
      state.problem = null;
      renderMeta();
      renderList();
      if (index.groups[state.group].problems.length) openProblem(0);
    });
    $("#search").addEventListener("input", renderList);
    var first = 0;
    var m = /^#g=(\d+)&p=(\d+)$/.exec(location.hash);
    if (m && index.groups[Number(m[1])] && index.groups[Number(m[1])].problems[Number(m[2])]) {
      state.group = Number(m[1]);
      select.value = m[1];
      first = Number(m[2]);
    }
    renderMeta();
    renderList();
    if (index.groups[state.group].problems.length) openProblem(first);
    document.body.dataset.ready = "1";
  }
  start();
})();
