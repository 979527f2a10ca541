// The dashboard: a view of the runs and analyses API, with no other source of data. It polls the same routes any
// client calls (docs/api.md), so in eyes-off mode it shows exactly what the API shows. No library, no CDN.
"use strict";
(() => {
  const api = location.pathname.replace(/\/dashboard\/?$/, "");           // "/api"
  // The Functions app's key (a host key: a function's own key opens only that function), given once as ?code=: kept in
  // this tab's session storage and taken out of the address bar, so it stays out of history and bookmarks.
  const given = new URLSearchParams(location.search).get("code");
  if (given) {
    sessionStorage.setItem("fl-key", given);
    history.replaceState(null, "", location.pathname + location.hash);
  }
  const key = sessionStorage.getItem("fl-key");
  const headers = key ? { "x-functions-key": key } : {};
  const withKey = (url) => key ? url + (url.includes("?") ? "&" : "?") + "code=" + encodeURIComponent(key) : url;
  const active = new Set(["Pending", "Running", "Suspended", "ContinuedAsNew"]);
  let selected = null;     // { kind: "run" | "analysis", id }
  let detailTimer = null;
  let lastAction = null;   // { id, text, error }: the answer to the last button, kept across refreshes
  let audit = null;        // { id, committed, response }: read again only when a round was committed

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "onclick") node.addEventListener("click", value);
      else if (name === "style") node.style.cssText = value;   // through the CSSOM: the page's CSP allows no style attribute
      else node.setAttribute(name, String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const svgNs = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(svgNs, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    for (const child of children.flat(Infinity)) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    return node;
  }

  async function call(method, path, body) {
    const init = { method, headers: { ...headers } };
    if (body !== undefined) { init.headers["content-type"] = "application/json"; init.body = body; }
    const response = await fetch(api + path, init);
    const text = await response.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { json = null; }
    return { status: response.status, ok: response.ok, json, text };
  }

  const problemText = (r) => r.json && r.json.title
    ? `${r.status} ${r.json.title}${r.json.detail ? " " + r.json.detail : ""}${(r.json.errors || []).map(e => `\n${e.path}: ${e.message}`).join("")}`
    : `${r.status} ${r.text}`;
  const fixed = (v, digits) => v === null || v === undefined ? "–" : Number(v).toFixed(digits);

  // ---- lists -------------------------------------------------------------------------------------------------------
  async function refreshLists() {
    try {
      const [runs, analyses] = await Promise.all([call("GET", "/runs?pageSize=100"), call("GET", "/analyses?pageSize=100")]);
      document.getElementById("connection").textContent = runs.ok ? `connected to ${location.host}${api}` : problemText(runs);
      if (runs.ok) fillList("runs", runs.json.runs.sort((a, b) => b.createdAt.localeCompare(a.createdAt)), r => r.runId, r => [
        el("td", {}, r.runId), el("td", {}, el("span", { class: "status " + r.runtimeStatus }, r.runtimeStatus)),
        el("td", {}, r.round !== undefined ? `${r.round}/${r.totalRounds ?? "?"}` : "")], "run");
      if (analyses.ok) fillList("analyses", analyses.json.analyses.sort((a, b) => b.createdAt.localeCompare(a.createdAt)), a => a.analysisId, a => [
        el("td", {}, a.analysisId), el("td", {}, el("span", { class: "status " + a.runtimeStatus }, a.runtimeStatus))], "analysis");
    } catch (e) {
      document.getElementById("connection").textContent = "disconnected: " + e.message;
    }
  }

  function fillList(tableId, items, idOf, cells, kind) {
    const body = document.querySelector(`#${tableId} tbody`);
    body.replaceChildren(...items.map(item => {
      const id = idOf(item);
      const isSelected = selected && selected.kind === kind && selected.id === id;
      return el("tr", { class: "item" + (isSelected ? " selected" : ""), "data-id": id, onclick: () => select(kind, id) }, cells(item));
    }));
  }

  // Replaces the detail pane's content; null children are left out.
  function show(...children) {
    document.getElementById("detail").replaceChildren(...children.flat(Infinity).filter(c => c !== null && c !== undefined));
  }

  function select(kind, id) {
    selected = { kind, id };
    show(el("h2", {}, id), el("p", { class: "muted" }, "loading…"));
    history.replaceState(null, "", `#${kind}=${encodeURIComponent(id)}`);
    clearTimeout(detailTimer);
    refreshDetail();
    refreshLists();
  }

  // ---- one run -----------------------------------------------------------------------------------------------------
  async function refreshDetail() {
    clearTimeout(detailTimer);
    if (!selected) return;
    const { kind, id } = selected;
    let running = false;
    try {
      running = kind === "run" ? await showRun(id) : await showAnalysis(id);
    } catch (e) {
      show(el("p", { class: "message error" }, e.message));
    }
    if (selected && selected.kind === kind && selected.id === id) detailTimer = setTimeout(refreshDetail, running ? 1000 : 5000);
  }

  const isSelected = (kind, id) => selected !== null && selected.kind === kind && selected.id === id;

  async function showRun(id) {
    const path = "/runs/" + encodeURIComponent(id);
    const run = await call("GET", path);
    if (!isSelected("run", id)) return false;   // another run was selected meanwhile: its own refresh shows it
    if (!run.ok) { show(el("h2", {}, id), el("p", { class: "message error" }, problemText(run))); return false; }
    const r = run.json;
    const running = active.has(r.runtimeStatus);
    const total = r.totalRounds || 0;
    const committed = r.rounds.length ? r.rounds[r.rounds.length - 1].round : 0;
    if (!audit || audit.id !== id || audit.committed !== committed) {
      audit = { id, committed, response: await call("GET", path + "/audit") };
      if (!isSelected("run", id)) return false;
    }
    const said = lastAction && lastAction.id === id ? lastAction : null;
    const message = el("div", { class: "message" + (said && said.error ? " error" : ""), "data-testid": "action-result" }, said ? said.text : "");
    const act = async (verb) => {
      const result = await call("POST", `${path}/${verb}`);
      lastAction = { id, error: !result.ok, text: result.ok ? `${verb}: ${result.status} ${result.json && result.json.runtimeStatus ? result.json.runtimeStatus : "accepted"}` : problemText(result) };
      refreshDetail(); refreshLists();
    };
    show(
      el("h2", {}, r.runId, " ", el("span", { class: "status " + r.runtimeStatus, "data-testid": "run-status", "data-run": r.runId }, r.runtimeStatus)),
      el("p", {}, r.phase ? `phase: ${r.phase} · ` : "", `round ${r.round ?? committed} of ${total} · ${committed} committed · started ${new Date(r.createdAt).toLocaleString()}`),
      el("div", { class: "progress", "data-testid": "progress", "data-committed": committed, "data-total": total },
        el("div", { style: `width:${total ? Math.min(100, 100 * committed / total) : 0}%` })),
      el("div", {},
        el("button", { "data-testid": "cancel", disabled: !running, onclick: () => act("cancel") }, "Cancel"),
        el("button", { "data-testid": "resume", disabled: running || r.runtimeStatus === "Completed", onclick: () => act("resume") }, "Resume"),
        message),
      r.failure ? el("p", { class: "message error", "data-testid": "failure" }, r.failure) : null,
      r.outcome ? el("p", { "data-testid": "outcome" }, `Final accuracy ${fixed(r.outcome.finalAccuracy, 4)}, loss ${fixed(r.outcome.finalLoss, 4)}${r.outcome.stopped ? " (stopped: " + r.outcome.stopped + ")" : ""}`) : null,
      el("h3", {}, "Accuracy and loss per round"),
      el("div", { class: "charts" },
        chart("accuracy", "evaluation accuracy", r.rounds, [{ name: "accuracy", color: "#0969da", value: m => m.evalAccuracy }], 0, 1),
        chart("loss", "loss (train, evaluation)", r.rounds, [
          { name: "train-loss", color: "#bf8700", value: m => m.trainLoss },
          { name: "eval-loss", color: "#8250df", value: m => m.evalLoss }])),
      el("h3", {}, "Participation"),
      participation(r.rounds),
      epsilon(r.rounds),
      el("h3", {}, "Audit"),
      auditView(audit.response),
      el("h3", {}, "Checkpoints"),
      checkpoints(id, r.checkpoints));
    return running;
  }

  // A line chart as SVG: one circle per committed round and series (data-series, data-round, data-value), so a test or
  // a reader can check each point against the manifests.
  function chart(id, title, rounds, series, min, max) {
    const width = 420, height = 220, left = 44, right = 12, top = 22, bottom = 28;
    const points = series.map(s => rounds.map(r => ({ round: r.round, value: s.value(r.metrics) })).filter(p => p.value !== null && p.value !== undefined));
    const values = points.flat().map(p => p.value);
    const lo = min ?? (values.length ? Math.min(0, ...values) : 0);
    const hi = max ?? (values.length ? Math.max(...values) * 1.05 || 1 : 1);
    const lastRound = Math.max(1, ...rounds.map(r => r.round));
    const firstRound = Math.min(lastRound, ...rounds.map(r => r.round));
    const x = round => left + (lastRound === firstRound ? 0.5 : (round - firstRound) / (lastRound - firstRound)) * (width - left - right);
    const y = value => top + (1 - (value - lo) / (hi - lo || 1)) * (height - top - bottom);
    const ticks = [0, 0.25, 0.5, 0.75, 1].map(t => lo + t * (hi - lo));
    return svg("svg", { class: "chart", width, height, viewBox: `0 0 ${width} ${height}`, "data-testid": "chart-" + id, role: "img", "aria-label": title },
      svg("text", { x: left, y: 14 }, title),
      ticks.map(t => [svg("line", { class: "grid", x1: left, x2: width - right, y1: y(t), y2: y(t) }),
        svg("text", { x: 4, y: y(t) + 3 }, t.toFixed(hi - lo < 2 ? 2 : 1))]),
      svg("line", { class: "axis", x1: left, x2: left, y1: top, y2: height - bottom }),
      svg("line", { class: "axis", x1: left, x2: width - right, y1: height - bottom, y2: height - bottom }),
      svg("text", { x: left, y: height - 8 }, `round ${firstRound}`), svg("text", { x: width - right - 50, y: height - 8 }, `round ${lastRound}`),
      series.map((s, i) => [
        svg("polyline", { fill: "none", stroke: s.color, "stroke-width": 2, points: points[i].map(p => `${x(p.round)},${y(p.value)}`).join(" ") }),
        points[i].map(p => svg("circle", { cx: x(p.round), cy: y(p.value), r: 3, fill: s.color, "data-series": s.name, "data-round": p.round, "data-value": p.value },
          svg("title", {}, `${s.name}, round ${p.round}: ${p.value.toFixed(4)}`))),
        svg("text", { x: width - right - 90, y: 14 + 12 * i, fill: s.color }, s.name)]));
  }

  // Silo by round: took part, late, refused (with the reason), failed, or not asked this round.
  function stateOf(round, silo) {
    if (round.participants.includes(silo)) {
      const update = (round.updates || []).find(u => u.siloId === silo);
      // Eyes-on manifests record each update's examples and weight; eyes-off ones do not, and neither does the page.
      const detail = update && update.examples !== undefined ? ` (${update.examples} examples, weight ${fixed(update.weight, 3)})` : "";
      return { state: "took-part", text: "took part" + detail };
    }
    const rejected = round.rejected.find(x => x.siloId === silo);
    if (rejected) {
      const failed = ["train-failed", "canceled", "dropped-out", "key-exchange-failed", "no-update", "missing"].includes(rejected.reason);
      const state = rejected.reason === "late" ? "late" : failed ? "failed" : "refused";
      return { state, text: `${state}: ${rejected.reason}${rejected.detail ? " (" + rejected.detail + ")" : ""}` };
    }
    if ((round.sampled || []).includes(silo)) return { state: "failed", text: "asked, no update" };
    return { state: "not-sampled", text: "not asked this round" };
  }

  function participation(rounds) {
    const silos = [...new Set(rounds.flatMap(r => [...(r.sampled || []), ...r.participants, ...r.rejected.map(x => x.siloId)]))].sort();
    const symbol = { "took-part": "✓", late: "L", refused: "R", failed: "F", "not-sampled": "" };
    return el("div", {},
      el("table", { class: "grid", "data-testid": "participation" },
        el("thead", {}, el("tr", {}, el("th", {}, "silo"), rounds.map(r => el("th", {}, r.round)))),
        el("tbody", {}, silos.map(silo => el("tr", {}, el("td", {}, silo), rounds.map(r => {
          const s = stateOf(r, silo);
          return el("td", { class: "cell " + s.state, "data-silo": silo, "data-round": r.round, "data-state": s.state, title: `${silo}, round ${r.round}: ${s.text}` }, symbol[s.state]);
        }))))),
      el("p", { class: "legend" }, ["took-part", "late", "refused", "failed", "not-sampled"].map(s => el("span", {}, el("i", { class: "cell " + s, style: `background:var(--${s === "took-part" ? "ok" : s === "not-sampled" ? "idle" : s})` }), s.replace("-", " ")))));
  }

  function epsilon(rounds) {
    const withDp = rounds.filter(r => r.privacy && r.privacy.epsilon !== undefined && r.privacy.epsilon !== null);
    const mode = rounds.length && rounds[rounds.length - 1].privacy ? rounds[rounds.length - 1].privacy.mode : "eyes-on";
    if (!withDp.length) return el("p", { class: "muted", "data-testid": "epsilon" }, `Privacy: ${mode}, no differential privacy.`);
    const delta = withDp[withDp.length - 1].privacy.delta;
    return el("div", {},
      el("h3", {}, `ε spent (δ = ${delta})`),
      chart("epsilon", "ε after each round", withDp.map(r => ({ round: r.round, metrics: { epsilon: r.privacy.epsilon } })), [{ name: "epsilon", color: "#cf222e", value: m => m.epsilon }], 0),
      el("table", { "data-testid": "epsilon" }, el("tr", {}, el("th", {}, "round"), withDp.map(r => el("td", {}, r.round))),
        el("tr", {}, el("th", {}, "ε"), withDp.map(r => el("td", { "data-round": r.round }, fixed(r.privacy.epsilon, 3))))));
  }

  function auditView(audit) {
    if (!audit.ok) return el("p", { class: "message error", "data-testid": "audit" }, problemText(audit));
    const v = audit.json.verification;
    return v.isValid
      ? el("p", { class: "ok", "data-testid": "audit", "data-valid": "true" }, `✓ The audit chain verifies: ${audit.json.entries.length} entries, head ${String(v.headHash || "").slice(0, 16)}…`)
      : el("p", { class: "bad", "data-testid": "audit", "data-valid": "false" }, `✗ The audit chain does not verify at entry ${v.firstBadIndex}: ${v.reason}${v.detail ? " (" + v.detail + ")" : ""}`);
  }

  function checkpoints(id, list) {
    if (!list.length) return el("p", { class: "muted" }, "No committed round yet.");
    return el("table", { "data-testid": "checkpoints" },
      el("thead", {}, el("tr", {}, el("th", {}, "round"), el("th", {}, "SHA-256"), el("th", {}, "bytes"), el("th", {}, ""))),
      el("tbody", {}, [...list].reverse().map(c => el("tr", {},
        el("td", {}, c.round + (c.latest ? " (latest)" : "")), el("td", {}, el("code", {}, c.model.sha256.slice(0, 16) + "…")), el("td", {}, c.model.bytes ?? ""),
        el("td", {}, el("a", { href: withKey(`${api}/runs/${encodeURIComponent(id)}/checkpoints/${c.round}/model`), download: `${id}-round-${String(c.round).padStart(5, "0")}.safetensors`, "data-round": c.round }, "download"))))));
  }

  // ---- one analysis ------------------------------------------------------------------------------------------------
  async function showAnalysis(id) {
    const r = await call("GET", "/analyses/" + encodeURIComponent(id));
    if (!isSelected("analysis", id)) return false;
    if (!r.ok) { show(el("h2", {}, id), el("p", { class: "message error" }, problemText(r))); return false; }
    const a = r.json;
    const status = a.results ? "Completed" : a.runtimeStatus;
    show(
      el("h2", {}, id, " ", el("span", { class: "status " + status, "data-testid": "analysis-status", "data-analysis": id }, status)),
      a.failure ? el("p", { class: "message error" }, a.failure) : null,
      a.results ? el("pre", { "data-testid": "analysis-result" }, JSON.stringify(a.results, null, 2)) : el("p", { class: "muted" }, "No result yet."));
    return !a.results && active.has(a.runtimeStatus);
  }

  // ---- start -------------------------------------------------------------------------------------------------------
  document.getElementById("start").addEventListener("click", async () => {
    const out = document.getElementById("start-result");
    const result = await call("POST", "/runs", document.getElementById("spec").value);
    out.className = "message" + (result.ok ? "" : " error");
    out.textContent = result.ok ? `Started ${result.json.runId}.` : problemText(result);
    if (result.ok) select("run", result.json.runId);
  });

  const hash = /^#(run|analysis)=(.+)$/.exec(location.hash);
  if (hash) select(hash[1], decodeURIComponent(hash[2]));
  refreshLists();
  setInterval(refreshLists, 3000);
})();
