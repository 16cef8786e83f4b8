// cratestream web UI: plain JavaScript over the gateway's JSON API
// (schemas/openapi.yaml). No framework, no build step.
"use strict";

(function () {
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

  // h builds an element: h("a", {href: "/x", class: "y"}, "text", child...).
  // Text is always text (never parsed as HTML).
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : v);
    }
    for (const kid of kids.flat()) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return el;
  }

  // api calls the gateway; a non-2xx answer throws an Error carrying the
  // JSON error body ({error, field}) and the status.
  async function api(method, path, body) {
    const opts = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const res = await fetch(path, opts);
    let data = null;
    try { data = await res.json(); } catch (_) { /* empty body */ }
    if (!res.ok) {
      const err = new Error((data && data.error) || res.status + " " + res.statusText);
      err.status = res.status;
      err.field = data && data.field;
      throw err;
    }
    return data;
  }

  const money = (m) => (m ? m.amount + " " + m.currency : "–");
  // releaseName is "Artist – Title (year)" when the gateway knows the
  // release (title, artists, year), else "#id".
  const releaseName = (r) => {
    if (!r.title) return "#" + r.release_id;
    return (r.artists ? r.artists + " – " : "") + r.title + (r.year ? " (" + r.year + ")" : "");
  };
  const eur = (minor) => (minor / 100).toFixed(2) + " €";
  const state = { user: null, view: null, pipelineTimer: null, streams: {} };
  // Every progress value shown, per bar (the browser test reads it).
  window.cratestreamProgress = { cart: [], sync: [] };

  // ---- views -------------------------------------------------------------

  function show(view) {
    if (!state.user) view = "login";
    if (!["login", "carts", "recommendations", "dashboard"].includes(view)) view = "carts";
    state.view = view;
    $$(".view").forEach((v) => { v.hidden = v.id !== "view-" + view; });
    $$("#nav a").forEach((a) => a.classList.toggle("active", a.dataset.view === view));
    clearInterval(state.pipelineTimer);
    if (view === "recommendations") loadRecommendations();
    if (view === "dashboard") loadDashboard();
  }

  async function boot() {
    const params = new URLSearchParams(location.search);
    if (params.get("error")) showLoginError(params.get("error"));
    try {
      const me = await api("GET", "/api/v1/me");
      state.user = me.user;
      if (me.sync_unavailable) syncUnavailable(me.sync_unavailable);
      $("#user-name").textContent = me.user;
      $("#nav").hidden = false;
      $("#who").hidden = false;
    } catch (e) {
      if (e.status !== 401) showLoginError(e.message);
    }
    show(location.hash.slice(1));
    if (state.user) loadCountries();
  }

  function showLoginError(msg) {
    const p = $("#login-error");
    p.textContent = msg;
    p.hidden = false;
  }

  window.addEventListener("hashchange", () => show(location.hash.slice(1)));

  $("#logout").addEventListener("click", async () => {
    await api("POST", "/auth/logout").catch(() => {});
    state.user = null;
    location.hash = "";
    location.reload();
  });

  // A pasted demo link is followed in this tab; the gateway sets the
  // session cookie and sends us back here.
  $("#demo-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const raw = $("#demo-link").value.trim();
    let u;
    try { u = new URL(raw, location.href); } catch (_) { u = null; }
    if (!u || u.pathname !== "/auth/demo" || !u.searchParams.get("token")) {
      showLoginError("That is not a demo link: it looks like /auth/demo?token=…");
      return;
    }
    location.href = "/auth/demo?token=" + encodeURIComponent(u.searchParams.get("token")) + "&next=" + encodeURIComponent("/#carts");
  });

  // ---- progress over Server-Sent Events ----------------------------------

  // follow subscribes to a request's events and drives a progress block.
  // onResult gets a cart result; onEnd runs once the request is over.
  function follow(kind, eventsURL, block, onResult, onEnd) {
    if (state.streams[kind]) state.streams[kind].close();
    const bar = $(".bar", block);
    const text = $(".progress-text", block);
    const prog = $(".progress", block);
    block.hidden = false;
    prog.classList.remove("failed");
    const shown = window.cratestreamProgress[kind] = [];
    // Statuses (request-status.v1) and the result (carts.v1) come from two
    // topics, so a late status can follow the result: the bar only moves
    // forward, and nothing moves it after the result.
    let last = 0, over = false;
    const set = (pct, msg) => {
      pct = Math.max(last, Math.min(100, Math.round(pct)));
      last = pct;
      bar.style.width = pct + "%";
      prog.dataset.value = pct;
      text.textContent = msg;
      shown.push(pct);
    };
    set(2, "Queued…");
    const es = new EventSource(eventsURL);
    state.streams[kind] = es;
    es.addEventListener("status", (ev) => {
      const st = JSON.parse(ev.data);
      if (over) return;
      let pct = 5;
      let msg = st.message || st.stage;
      if (st.total > 0) {
        pct = 10 + 85 * (st.done / st.total);
        msg = st.stage + ": " + st.done + " of " + st.total + (st.message ? " — " + st.message : "");
      }
      if (st.finished) pct = 100;
      if (st.error) {
        prog.classList.add("failed");
        msg = st.stage + ": " + st.error;
      }
      set(pct, msg);
    });
    es.addEventListener("result", (ev) => {
      const res = JSON.parse(ev.data);
      over = true;
      set(100, res.error ? "No carts: " + res.error : "Done: " + res.carts.length + " carts in " + res.total_ms + " ms");
      if (res.error) prog.classList.add("failed");
      if (onResult) onResult(res);
    });
    es.addEventListener("end", () => {
      es.close();
      delete state.streams[kind];
      if (onEnd) onEnd();
    });
    es.onerror = () => {
      // EventSource reconnects by itself (resuming with Last-Event-ID);
      // say so while it does.
      if (es.readyState === EventSource.CONNECTING) text.textContent += " (reconnecting…)";
    };
  }

  // ---- sync ---------------------------------------------------------------

  // syncUnavailable disables the sync button for good and says why (the
  // demo: no Discogs API, no importer).
  function syncUnavailable(why) {
    const btn = $("#sync");
    btn.disabled = true;
    btn.title = why;
    $("#sync-progress").hidden = true;
    const note = $("#sync-note");
    note.textContent = "Syncing is not available here: " + why + ".";
    note.hidden = false;
  }

  $("#sync").addEventListener("click", async () => {
    const btn = $("#sync");
    btn.disabled = true;
    $("#sync-note").hidden = true;
    const block = $("#sync-progress");
    try {
      const acc = await api("POST", "/api/v1/users/" + encodeURIComponent(state.user) + "/sync", {});
      follow("sync", acc.events_url, block, null, () => { btn.disabled = false; });
    } catch (e) {
      // No progress bar for a refused sync (the demo's 503 says why).
      block.hidden = true;
      const note = $("#sync-note");
      note.textContent = "Sync failed: " + e.message;
      note.hidden = false;
      btn.disabled = false;
    }
  });

  // ---- cart form ----------------------------------------------------------

  const form = $("#cart-form");
  const ratio = form.elements.wantlist_ratio;
  const ratioOut = () => { $("#ratio-out").textContent = Math.round(ratio.value * 100) + "% wantlist"; };
  ratio.addEventListener("input", ratioOut);
  ratioOut();

  function criteria() {
    const f = form.elements;
    const num = (el) => (el.value === "" ? undefined : Number(el.value));
    return {
      budget: { amount: f.budget_amount.value.trim(), currency: f.budget_currency.value },
      min_media_cond: f.min_media_cond.value,
      min_seller_rating: num(f.min_seller_rating),
      min_qty: num(f.min_qty),
      countries: f.countries.value.split(",").map((s) => s.trim()).filter(Boolean),
      wantlist_ratio: Number(f.wantlist_ratio.value),
      top_n: num(f.top_n),
      objective: f.objective.value,
      multi_seller: f.multi_seller.checked,
    };
  }

  function clearErrors() {
    $$(".field-error", form).forEach((e) => { e.textContent = ""; });
    $$(".invalid", form).forEach((e) => e.classList.remove("invalid"));
    $("#cart-error").hidden = true;
  }

  function fieldError(field, msg) {
    const base = (field || "").split(/[.[]/)[0];
    const slot = $('.field-error[data-field="' + base + '"]', form);
    if (!slot) {
      $("#cart-error").textContent = msg;
      $("#cart-error").hidden = false;
      return;
    }
    slot.textContent = msg;
    const input = form.elements[base] || form.elements[base + "_amount"];
    if (input && input.classList) input.classList.add("invalid");
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors();
    const btn = $("#cart-submit");
    btn.disabled = true;
    $("#carts").replaceChildren();
    $("#cart-summary").textContent = "";
    try {
      const acc = await api("POST", "/api/v1/carts", criteria());
      follow("cart", acc.events_url, $("#cart-progress"), renderResult, () => { btn.disabled = false; });
    } catch (e) {
      fieldError(e.field, e.message);
      btn.disabled = false;
    }
  });

  function renderResult(res) {
    const box = $("#carts");
    box.replaceChildren();
    const sum = [res.candidates + " candidate releases", res.listings_considered + " listings considered",
      "answered in " + res.total_ms + " ms (" + res.wait_ms + " ms waiting for fresh listings)"];
    if (res.stale_releases && res.stale_releases.length) sum.push(res.stale_releases.length + " releases could not be refreshed in time");
    $("#cart-summary").textContent = sum.join(" · ");
    if (res.error) {
      box.append(h("p", { class: "error" }, "No carts: " + res.error));
      return;
    }
    res.carts.forEach((c) => box.append(cartCard(c)));
  }

  function cartCard(c) {
    const rows = c.items.map((it) =>
      h("tr", {},
        h("td", {},
          h("a", { class: "release", href: "https://www.discogs.com/release/" + it.release_id, target: "_blank", rel: "noopener", title: "release " + it.release_id }, releaseName(it)), " ",
          h("span", { class: "tag " + it.source }, it.source)),
        h("td", {}, it.media || "–", it.sleeve ? " / " + it.sleeve : ""),
        h("td", {}, it.seller, h("br"), h("span", { class: "muted" }, it.seller_rating.toFixed(1) + "%" + (it.ships_from ? " · " + it.ships_from : ""))),
        h("td", { class: "num" }, money(it.price)),
        h("td", { class: "num" }, it.score.toFixed(2)),
        h("td", { class: "links-cell" },
          it.url ? h("a", { href: it.url, target: "_blank", rel: "noopener" }, "listing") : null,
          it.cart_url ? h("a", { href: it.cart_url, target: "_blank", rel: "noopener" }, "add to cart") : null)));
    return h("article", { class: "cart", "data-rank": c.rank },
      h("header", {},
        h("span", { class: "rank" }, "Cart " + c.rank + " · " + c.quantity + " record" + (c.quantity === 1 ? "" : "s")),
        h("span", { class: "total" }, money(c.total))),
      h("div", { class: "figures" },
        h("span", {}, "Subtotal " + money(c.subtotal)),
        h("span", {}, "Shipping " + money(c.shipping)),
        h("span", {}, "Score " + c.score.toFixed(2)),
        h("span", {}, "Seller" + (c.sellers.length === 1 ? " " : "s ") + c.sellers.join(", "))),
      h("table", {},
        h("thead", {}, h("tr", {}, h("th", {}, "Release"), h("th", {}, "Media / sleeve"), h("th", {}, "Seller"),
          h("th", { class: "num" }, "Price"), h("th", { class: "num" }, "Score"), h("th", {}, "Links"))),
        h("tbody", {}, rows)));
  }

  async function loadCountries() {
    try {
      const m = await api("GET", "/api/v1/dashboard/market");
      $("#country-list").replaceChildren(...m.by_ships_from.map((k) => h("option", { value: k.key })));
    } catch (_) { /* no ClickHouse: no suggestions */ }
  }

  // ---- recommendations ----------------------------------------------------

  async function loadRecommendations() {
    const list = $("#recs");
    const err = $("#recs-error");
    err.hidden = true;
    list.replaceChildren(h("li", { class: "muted" }, "Loading…"));
    try {
      const r = await api("GET", "/api/v1/users/" + encodeURIComponent(state.user) + "/recommendations?limit=30");
      $("#recs-meta").textContent = "Model " + (r.model_version || "–") + " · " + r.cascade_level + " · " + r.wantlist + " releases on your wantlist";
      list.replaceChildren(...r.items.map(recItem));
      if (!r.items.length) list.replaceChildren(h("li", { class: "muted" }, "No recommendations yet."));
    } catch (e) {
      list.replaceChildren();
      err.textContent = e.message;
      err.hidden = false;
    }
  }

  function recItem(it) {
    const sim = h("div", { class: "similar" });
    const btn = h("button", { class: "button", type: "button", onclick: () => loadSimilar(it.release_id, sim) }, "Similar");
    return h("li", {},
      h("div", { class: "row between" },
        h("span", {}, h("a", { class: "release", href: it.url, target: "_blank", rel: "noopener", title: "release " + it.release_id }, it.title ? releaseName(it) : "Release " + it.release_id),
          h("span", { class: "muted" }, " · score " + it.score.toFixed(3))),
        btn),
      sim);
  }

  async function loadSimilar(id, box) {
    box.replaceChildren("Loading…");
    try {
      const s = await api("GET", "/api/v1/releases/" + id + "/similar?limit=8");
      box.replaceChildren("Similar to " + (s.title ? releaseName(s) : id) + ": ", ...s.items.map((x) =>
        h("a", { class: "release", href: x.url, target: "_blank", rel: "noopener", title: "release " + x.release_id + " · similarity " + x.score }, releaseName(x))));
      if (!s.items.length) box.append("none");
    } catch (e) {
      box.replaceChildren(h("span", { class: "error" }, e.message));
    }
  }

  $("#similar-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const id = ev.target.elements.release.value;
    if (!id) return;
    const box = h("div", { class: "similar" });
    $("#recs").prepend(h("li", {}, box));
    loadSimilar(id, box);
  });

  // ---- dashboard ----------------------------------------------------------

  const SVGNS = "http://www.w3.org/2000/svg";
  function s(tag, attrs, ...kids) {
    const el = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
    for (const kid of kids) el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    return el;
  }
  const COLORS = ["#0f766e", "#c2410c", "#7c3aed", "#2563eb", "#ca8a04", "#db2777", "#4d7c0f", "#64748b"];

  function note(box, msg) { box.replaceChildren(h("p", { class: "note" }, msg)); }

  // barChart: horizontal bars of [{label, value, text}].
  function barChart(box, rows, fmt) {
    if (!rows.length) return note(box, "No data yet.");
    fmt = fmt || ((v) => String(v));
    const W = 520, row = 22, left = 130, H = rows.length * row + 8;
    const max = Math.max(...rows.map((r) => r.value), 1e-9);
    const svg = s("svg", { viewBox: "0 0 " + W + " " + H, role: "img" });
    rows.forEach((r, i) => {
      const y = 4 + i * row;
      const w = Math.max(1, (W - left - 70) * (r.value / max));
      svg.append(
        s("text", { x: left - 8, y: y + 14, "text-anchor": "end" }, r.label),
        s("rect", { x: left, y: y + 3, width: w, height: row - 8, rx: 3, fill: COLORS[0] }),
        s("text", { x: left + w + 6, y: y + 14 }, r.text || fmt(r.value)));
    });
    box.replaceChildren(svg);
  }

  // boxPlot of a price distribution (EUR cents).
  function boxPlot(box, p) {
    if (!p.listings) return note(box, "Release " + p.release_id + " has no live listings with an EUR price.");
    const W = 520, H = 120, L = 50, R = 50;
    const lo = p.min_eur_minor, hi = Math.max(p.max_eur_minor, lo + 1);
    const x = (v) => L + (W - L - R) * (v - lo) / (hi - lo);
    const y = 40;
    const svg = s("svg", { viewBox: "0 0 " + W + " " + H, role: "img" },
      s("line", { x1: x(p.min_eur_minor), x2: x(p.max_eur_minor), y1: y, y2: y, stroke: "#999" }),
      s("line", { x1: x(p.p10_eur_minor), x2: x(p.p90_eur_minor), y1: y, y2: y, stroke: COLORS[0], "stroke-width": 3 }),
      s("rect", { x: x(p.p25_eur_minor), y: y - 14, width: Math.max(2, x(p.p75_eur_minor) - x(p.p25_eur_minor)), height: 28, fill: "#ccfbf1", stroke: COLORS[0] }),
      s("line", { x1: x(p.median_eur_minor), x2: x(p.median_eur_minor), y1: y - 16, y2: y + 16, stroke: COLORS[1], "stroke-width": 3 }));
    const marks = [["min", p.min_eur_minor], ["p25", p.p25_eur_minor], ["median", p.median_eur_minor], ["p75", p.p75_eur_minor], ["max", p.max_eur_minor]];
    marks.forEach(([name, v], i) => {
      svg.append(s("text", { x: x(v), y: i % 2 ? 92 : 76, "text-anchor": "middle" }, name + " " + eur(v)));
    });
    svg.append(s("text", { x: L, y: 112 }, p.listings + " live listings of release " + p.release_id + " (p10 " + eur(p.p10_eur_minor) + ", p90 " + eur(p.p90_eur_minor) + ")"));
    box.replaceChildren(svg);
  }

  // lineChart of series {name: [values]} over n samples.
  function lineChart(box, series, n, unit) {
    const names = Object.keys(series);
    if (n < 2 || !names.length) return note(box, "Collecting samples… (one every 2 s while this page is open)");
    const W = 520, H = 190, L = 44, B = 20, T = 8, legend = 110;
    let max = 0;
    names.forEach((k) => series[k].forEach((v) => { max = Math.max(max, v || 0); }));
    max = max > 0 ? max * 1.1 : 1;
    const x = (i) => L + (W - L - legend) * i / (n - 1);
    const y = (v) => T + (H - T - B) * (1 - (v || 0) / max);
    const svg = s("svg", { viewBox: "0 0 " + W + " " + H, role: "img" },
      s("line", { x1: L, x2: W - legend, y1: H - B, y2: H - B, stroke: "#ccc" }),
      s("line", { x1: L, x2: L, y1: T, y2: H - B, stroke: "#ccc" }),
      s("text", { x: L - 4, y: T + 10, "text-anchor": "end" }, fmtNum(max)),
      s("text", { x: L - 4, y: H - B, "text-anchor": "end" }, "0"),
      s("text", { x: L, y: H - 4 }, n + " samples" + (unit ? " · " + unit : "")));
    names.forEach((k, i) => {
      const pts = series[k].map((v, j) => x(j).toFixed(1) + "," + y(v).toFixed(1)).join(" ");
      const c = COLORS[i % COLORS.length];
      svg.append(s("polyline", { points: pts, fill: "none", stroke: c, "stroke-width": 2 }),
        s("rect", { x: W - legend + 10, y: T + i * 16, width: 10, height: 10, fill: c }),
        s("text", { x: W - legend + 24, y: T + i * 16 + 9 }, k));
    });
    box.replaceChildren(svg);
  }

  const fmtNum = (v) => (v >= 1000 ? (v / 1000).toFixed(1) + "k" : v >= 10 ? Math.round(v) : v.toFixed(1));

  async function loadDashboard() {
    loadMarket();
    loadQuality();
    const pf = $("#price-form");
    if (!pf.elements.release.value) {
      // Default: a release the user was recommended, else any.
      api("GET", "/api/v1/users/" + encodeURIComponent(state.user) + "/recommendations?limit=1")
        .then((r) => {
          if (!r.items.length) throw new Error("no recommendation");
          if (!pf.elements.release.value) pf.elements.release.value = r.items[0].release_id;
          loadPrices();
        })
        .catch(() => note($("#chart-prices"), "Enter a release id."));
    } else {
      loadPrices();
    }
    loadPipeline();
    state.pipelineTimer = setInterval(loadPipeline, 2000);
  }

  async function loadMarket() {
    try {
      const m = await api("GET", "/api/v1/dashboard/market");
      barChart($("#chart-grades"), m.by_media_grade.map((g) => ({ label: g.name || "not graded", value: g.listings })));
      barChart($("#chart-countries"), m.by_ships_from.slice(0, 12).map((c) => ({ label: c.key || "unknown", value: c.listings })));
    } catch (e) {
      note($("#chart-grades"), e.message);
      note($("#chart-countries"), e.message);
    }
  }

  async function loadPrices() {
    const id = $("#price-form").elements.release.value;
    if (!id) return;
    try {
      boxPlot($("#chart-prices"), await api("GET", "/api/v1/dashboard/releases/" + encodeURIComponent(id) + "/prices"));
    } catch (e) {
      note($("#chart-prices"), e.message);
    }
  }
  $("#price-form").addEventListener("submit", (ev) => { ev.preventDefault(); loadPrices(); });

  async function loadQuality() {
    try {
      const q = await api("GET", "/api/v1/dashboard/rec-quality");
      barChart($("#chart-quality"), q.rows.slice(0, 12).map((r) => ({
        label: (r.model_version || "?").slice(-14) + " " + r.level, value: r.adoption_rate,
        text: (100 * r.adoption_rate).toFixed(1) + "% of " + r.recommended,
      })));
    } catch (e) {
      note($("#chart-quality"), e.message);
    }
  }

  async function loadPipeline() {
    if (state.view !== "dashboard") return;
    try {
      const p = await api("GET", "/api/v1/dashboard/pipeline");
      const names = p.processors.map((x) => x.processor);
      const through = {}, lag = {};
      names.forEach((k) => {
        through[k] = p.history.map((smp) => smp.in_per_sec[k] || 0);
        lag[k] = p.history.map((smp) => smp.lag[k] || 0);
      });
      lineChart($("#chart-throughput"), through, p.history.length, "records in per second");
      lineChart($("#chart-lag"), lag, p.history.length, "records behind");
      $("#pipeline-table").replaceChildren(
        h("tr", {}, h("th", {}, "processor"), h("th", {}, "in"), h("th", {}, "out"), h("th", {}, "in/s"), h("th", {}, "lag"), h("th", {}, "dead letters"), h("th", {}, "tasks")),
        ...p.processors.map((x) => h("tr", {}, h("td", {}, x.processor), h("td", {}, x.records_in), h("td", {}, x.records_out),
          h("td", {}, x.in_per_sec), h("td", {}, x.lag), h("td", {}, x.dead_letters), h("td", {}, x.tasks))));
      if (!names.length) note($("#chart-throughput"), "No stream processor runs in the gateway's process: see Grafana.");
    } catch (e) {
      note($("#chart-throughput"), e.message);
      note($("#chart-lag"), e.message);
      clearInterval(state.pipelineTimer);
    }
  }

  boot();
})();
