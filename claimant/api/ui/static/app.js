"use strict";
// claimant's dashboard: hash-routed pages over the /v1 API, called with the
// caller's token. Pages are built with DOM calls and textContent, never
// innerHTML, so nothing the API returns can become markup (the CSP forbids
// inline scripts as a second wall).

const BASE = location.pathname.replace(/\/ui(\/.*)?$/, "");
const API = BASE + "/v1";
const TOKEN_KEY = "claimant.token";
// The CLI's default too: noauth2's admin, so a loopback server just works.
const DEFAULT_TOKEN = "admin";
// The scheduler's default heartbeat timeout (s), used only when the server
// does not say a provider's health itself.
const HEARTBEAT_TIMEOUT = 60;
const USAGE_FETCHES = 8;
const NAMES = new Map(); // provider uuid -> name, as pages learn them

// ---------------------------------------------------------------- the API

class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || DEFAULT_TOKEN;
}

let clockSkew = 0; // server clock minus ours, in seconds (from Date headers)

function now() {
  return Date.now() / 1000 + clockSkew;
}

async function api(path, { method = "GET", body } = {}) {
  const headers = { "x-auth-token": token(), accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  let resp;
  try {
    resp = await fetch(API + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch (e) {
    throw new ApiError(0, "unreachable", "the server did not answer (" + e.message + ")");
  }
  const date = resp.headers.get("date");
  // Date has whole seconds: +0.5 s centres the error on zero.
  if (date) clockSkew = (Date.parse(date) + 500) / 1000 - Date.now() / 1000;
  if (resp.status === 204) return null;
  const text = await resp.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (e) {
    data = null;
  }
  if (!resp.ok) {
    const err = (data && data.error) || {};
    throw new ApiError(
      resp.status,
      err.code || "http_" + resp.status,
      err.message || resp.statusText || "HTTP " + resp.status,
      err.details,
    );
  }
  return data;
}

// What this server offers, read from its OpenAPI document (public): a page
// whose endpoint is missing says so instead of failing.
let capsPromise = null;
function caps() {
  if (!capsPromise) {
    capsPromise = fetch(API + "/openapi.json", { cache: "no-store" })
      .then((r) => (r.ok ? r.json() : {}))
      .catch(() => ({}))
      .then((doc) => {
        const paths = doc.paths || {};
        const params = (path, method) =>
          (((paths[path] || {})[method] || {}).parameters || []).map((p) => p.name);
        return {
          providerEvents: "/providers/{uuid}/events" in paths,
          requestEvents: "/requests/{uuid}/events" in paths,
          dryRun: params("/requests", "post").includes("dry_run"),
          // ?include=usage: usage and health in the listing, not one GET per provider
          listUsage: params("/providers", "get").includes("include"),
          showUsage: params("/providers/{uuid}", "get").includes("include"),
          capacity: "/capacity" in paths,
          statuses: enumOf(paths, "/requests", "status") || STATUSES,
        };
      });
  }
  return capsPromise;
}

// The values a query parameter takes, from the OpenAPI document.
function enumOf(paths, path, name) {
  const params = ((paths[path] || {}).get || {}).parameters || [];
  const p = params.find((x) => x.name === name);
  const schema = (p && p.schema) || {};
  const options = [schema, ...(schema.anyOf || [])];
  const found = options.find((o) => Array.isArray(o.enum));
  return found ? found.enum : null;
}

async function mapLimit(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

// Every provider with its usage, and hosts: root providers with their
// tree's usage summed (a NUMA host keeps its VCPUs in its children).
async function loadCloud() {
  const c = await caps();
  const { providers } = await api(c.listUsage ? "/providers?include=usage" : "/providers");
  const usages = await mapLimit(providers, USAGE_FETCHES, async (p) => {
    if (p.usages) return p.usages;
    try {
      return (await api("/providers/" + p.uuid + "/usages")).usages;
    } catch (e) {
      if (e.status === 404) return {}; // deleted since the list was read
      throw e;
    }
  });
  const byUuid = new Map();
  providers.forEach((p, i) => {
    NAMES.set(p.uuid, p.name);
    p.usage = usages[i] || {};
    p.health = healthOf(p);
    byUuid.set(p.uuid, p);
  });
  const hosts = [];
  const trees = new Map();
  for (const p of providers) {
    const root = p.root_uuid || p.uuid;
    if (!trees.has(root)) trees.set(root, []);
    trees.get(root).push(p);
  }
  for (const p of providers) {
    if ((p.root_uuid || p.uuid) !== p.uuid) continue;
    const members = trees.get(p.uuid) || [p];
    const usage = {};
    for (const m of members) {
      for (const [rc, u] of Object.entries(m.usage)) {
        const t = (usage[rc] = usage[rc] || { capacity: 0, used: 0, free: 0 });
        t.capacity += u.capacity;
        t.used += u.used;
        t.free += u.free;
      }
    }
    hosts.push({ ...p, usage, tree: members, pct: maxPct(usage) });
  }
  hosts.sort((a, b) => a.name.localeCompare(b.name, "en", { numeric: true }));
  return { providers, byUuid, hosts };
}

function healthOf(p) {
  // The server's verdict (it knows its heartbeat timeout): up, stale, down, no_agent.
  if (typeof p.health === "string") return p.health.replace(/_/g, " ");
  if (p.heartbeat_at == null) return "no agent";
  const age = now() - p.heartbeat_at;
  if (age <= HEARTBEAT_TIMEOUT) return "up";
  if (age <= 5 * HEARTBEAT_TIMEOUT) return "stale";
  return "down";
}

function pctOf(u) {
  return u && u.capacity > 0 ? Math.min(1, Math.max(0, u.used / u.capacity)) : 0;
}

function maxPct(usage, rc) {
  if (rc) return usage[rc] ? pctOf(usage[rc]) : null;
  const values = Object.values(usage).map(pctOf);
  return values.length ? Math.max(...values) : null;
}

function sumUsage(hosts) {
  const out = {};
  for (const h of hosts) {
    for (const [rc, u] of Object.entries(h.usage)) {
      const t = (out[rc] = out[rc] || { capacity: 0, used: 0, free: 0 });
      t.capacity += u.capacity;
      t.used += u.used;
      t.free += u.free;
    }
  }
  return out;
}

// ---------------------------------------------------------------- DOM helpers

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// replaceChildren, taking nested lists and skipping null/false as h() does.
function fill(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== undefined && c !== null && c !== false));
}

function short(uuid) {
  return uuid ? uuid.slice(0, 8) : "";
}

function num(n) {
  if (typeof n !== "number") return String(n);
  return Number.isInteger(n) ? n.toLocaleString("en") : n.toLocaleString("en", { maximumFractionDigits: 2 });
}

function pctText(p) {
  return p === null || p === undefined ? "–" : Math.round(p * 100) + "%";
}

function when(ts) {
  if (ts === null || ts === undefined) return "–";
  return new Date(ts * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

function ago(ts) {
  if (ts === null || ts === undefined) return "never";
  const d = now() - ts;
  const a = Math.abs(d);
  if (a < 2) return "just now"; // within the clock estimate's error
  let s;
  if (a < 60) s = Math.round(a) + " s";
  else if (a < 3600) s = Math.round(a / 60) + " min";
  else if (a < 86400) s = Math.round(a / 3600) + " h";
  else s = Math.round(a / 86400) + " d";
  return d >= 0 ? s + " ago" : "in " + s;
}

function time(ts) {
  return h("time", { title: when(ts), datetime: ts ? new Date(ts * 1000).toISOString() : undefined }, ago(ts));
}

function heatColor(p) {
  // green (idle) -> amber -> red (full)
  return "hsl(" + Math.round(120 * (1 - p)) + ", 62%, " + Math.round(48 - 8 * p) + "%)";
}

function bar(u) {
  const p = pctOf(u);
  const fill = h("span", { class: "fill" });
  fill.style.width = (p * 100).toFixed(1) + "%";
  fill.style.backgroundColor = heatColor(p);
  return h(
    "span",
    { class: "bar", title: num(u.used) + " of " + num(u.capacity) + " used, " + num(u.free) + " free" },
    fill,
  );
}

function badge(text, kind) {
  return h("span", { class: "badge " + (kind || String(text).replace(/[^a-z]+/g, "-")) }, text);
}

function healthBadge(p) {
  return badge(p.health, "health-" + p.health.replace(/[^a-z]+/g, "-"));
}

function enabledBadge(p) {
  return p.enabled === false ? badge("disabled", "disabled") : badge("enabled", "enabled");
}

function hostLink(p) {
  return h("a", { href: "#/hosts/" + p.uuid }, p.name);
}

function requestLink(uuid) {
  return h("a", { href: "#/requests/" + uuid, class: "mono", title: uuid }, short(uuid));
}

function table(headers, rows, cls) {
  return h(
    "table",
    { class: cls || "grid" },
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", {}, x)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c))))),
  );
}

function section(title, ...body) {
  return h("section", { class: "card" }, h("h2", {}, title), ...body);
}

function note(text, kind) {
  return h("p", { class: "note " + (kind || "") }, text);
}

function usageCell(u) {
  if (!u) return "–";
  return h("span", { class: "usage" }, bar(u), h("span", { class: "nums" }, num(u.used) + " / " + num(u.capacity)));
}

function classesOf(hosts) {
  const rcs = new Set();
  hosts.forEach((x) => Object.keys(x.usage).forEach((rc) => rcs.add(rc)));
  return [...rcs].sort();
}

function jsonBlock(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

// ---------------------------------------------------------------- shell

const state = { heatClass: "", hostFilter: "", hostHealth: "", requestStatus: "" };
const banner = () => document.getElementById("banner");

function showError(e) {
  const b = banner();
  fill(b);
  if (e.status === 401) {
    b.append(
      h("strong", {}, "The server refused the token (401 " + e.code + "). "),
      "Enter your token above; it is kept in this tab only (sessionStorage).",
    );
  } else if (e.status === 403) {
    b.append(h("strong", {}, "This token may not read this (403 " + e.code + "). "), e.message);
  } else if (e.status === 0) {
    b.append(h("strong", {}, "Cannot reach the server. "), e.message);
  } else if (e instanceof ApiError) {
    b.append(h("strong", {}, e.status + " " + e.code + ": "), e.message);
  } else {
    b.append(h("strong", {}, "Error: "), String(e && e.message ? e.message : e));
    console.error(e);
  }
  b.hidden = false;
}

function clearError() {
  banner().hidden = true;
}

let current = null; // {update} of the page on screen
let timer = null;
let generation = 0;

function parseRoute() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, query] = raw.split("?");
  const parts = path.split("/").filter(Boolean);
  return { parts, query: new URLSearchParams(query || "") };
}

async function route() {
  const { parts, query } = parseRoute();
  const page = PAGES[parts[0] || "overview"] || notFound;
  for (const a of document.querySelectorAll("nav a[data-nav]")) {
    a.classList.toggle("active", a.dataset.nav === (parts[0] || "overview"));
  }
  const view = document.getElementById("view");
  fill(view);
  clearError(); // the new page's first update shows it again if it still holds
  const mine = ++generation;
  current = page(view, parts.slice(1), query) || null;
  await refresh(mine);
}

async function refresh(mine) {
  clearTimeout(timer);
  if (current && current.update) {
    try {
      await current.update();
      if (mine !== generation) return;
      clearError();
      document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString("en-GB");
    } catch (e) {
      if (mine !== generation) return;
      showError(e);
    }
  }
  schedule();
}

function schedule() {
  clearTimeout(timer);
  const live = document.getElementById("live").checked;
  if (!live || !current || !current.live) return;
  const seconds = Number(document.getElementById("interval").value) || 5;
  timer = setTimeout(() => {
    if (document.hidden) schedule();
    else refresh(generation);
  }, seconds * 1000);
}

function notFound(view) {
  view.append(section("Not found", note("No such page. Try the overview.")));
  return null;
}

// ---------------------------------------------------------------- overview

function overviewPage(view) {
  const summary = h("div", { class: "cards" });
  const classes = h("div");
  const aggregates = h("div");
  const heat = h("div");
  const picker = h("select", { id: "heat-class", "aria-label": "resource class of the heat map" });
  picker.addEventListener("change", () => {
    state.heatClass = picker.value;
    refresh(generation);
  });
  view.append(
    summary,
    section("Capacity per resource class", classes),
    section(h("span", {}, "Hosts by use ", picker), heat),
    section("Capacity per aggregate", aggregates),
  );
  async function update() {
    const [cloud, c] = await Promise.all([loadCloud(), caps()]);
    const capacity = c.capacity ? await api("/capacity") : null;
    // Named aggregates: servers that have names put them in /v1/capacity.
    aggNames = {};
    ((capacity && capacity.aggregates) || []).forEach((a) => {
      if (a.uuid && a.name) aggNames[a.uuid] = a.name;
    });
    const { hosts } = cloud;
    const counts = {};
    hosts.forEach((x) => (counts[x.health] = (counts[x.health] || 0) + 1));
    const disabled = hosts.filter((x) => x.enabled === false).length;
    const total = sumUsage(hosts);
    fill(summary,
      h(
        "div",
        { class: "stat", id: "stat-hosts" },
        h("div", { class: "big" }, String(hosts.length)),
        h("div", {}, "hosts"),
        h(
          "div",
          { class: "small" },
          ["up", "stale", "down", "no agent"]
            .filter((k) => counts[k])
            .map((k) => h("span", { class: "health-" + k.replace(" ", "-") }, counts[k] + " " + k + " ")),
          disabled ? h("span", { class: "disabled" }, disabled + " disabled") : null,
        ),
      ),
      Object.entries(total).map(([rc, u]) =>
        h(
          "div",
          { class: "stat" },
          h("div", { class: "big" }, pctText(pctOf(u))),
          h("div", {}, rc + " used"),
          h("div", { class: "small" }, num(u.free) + " of " + num(u.capacity) + " free"),
        ),
      ),
    );
    const rcs = Object.keys(total).sort();
    // What a new request could still get: free on enabled hosts whose agent is
    // not late (the server's sum; it knows its heartbeat timeout).
    const schedulable = (rc) => {
      const x = capacity && capacity.resource_classes && capacity.resource_classes[rc];
      return x && x.schedulable_free !== undefined ? num(x.schedulable_free) : "–";
    };
    fill(classes,
      rcs.length
        ? table(
            ["class", "use", "used", "free", "capacity", "%", ...(capacity ? ["schedulable free"] : [])],
            rcs.map((rc) => {
              const u = total[rc];
              const row = [rc, bar(u), num(u.used), num(u.free), num(u.capacity), pctText(pctOf(u))];
              return capacity ? [...row, schedulable(rc)] : row;
            }),
            "grid classes",
          )
        : note("No inventory yet: no provider has reported any capacity."),
    );
    // the heat map's class picker keeps the operator's choice across refreshes
    fill(picker,
      h("option", { value: "" }, "fullest class"),
      classesOf(hosts).map((rc) => h("option", { value: rc }, rc)),
    );
    picker.value = classesOf(hosts).includes(state.heatClass) ? state.heatClass : "";
    fill(heat, heatMap(hosts, picker.value));
    fill(aggregates, aggregateTable(hosts));
  }
  return { update, live: true };
}

function groupsByAggregate(hosts) {
  const groups = new Map();
  for (const x of hosts) {
    const aggs = x.aggregates && x.aggregates.length ? x.aggregates : [""];
    for (const a of aggs) {
      if (!groups.has(a)) groups.set(a, []);
      groups.get(a).push(x);
    }
  }
  return [...groups.entries()].sort((a, b) => (a[0] === "" ? 1 : b[0] === "" ? -1 : a[0].localeCompare(b[0])));
}

let aggNames = {};

function aggregateName(uuid, names = aggNames) {
  if (!uuid) return "in no aggregate";
  return (names && names[uuid]) || "aggregate " + short(uuid);
}

function heatMap(hosts, rc) {
  if (!hosts.length) return note("No hosts yet.");
  const legend = h(
    "div",
    { class: "legend" },
    [0, 0.25, 0.5, 0.75, 1].map((p) => {
      const s = h("span", { class: "swatch" });
      s.style.backgroundColor = heatColor(p);
      return h("span", {}, s, pctText(p));
    }),
    h("span", {}, h("span", { class: "swatch none" }), "no such class"),
    h("span", {}, h("span", { class: "swatch striped" }), "stale / down"),
    h("span", {}, h("span", { class: "swatch off" }), "disabled"),
  );
  return h(
    "div",
    { class: "heatmap" },
    legend,
    groupsByAggregate(hosts).map(([agg, members]) =>
      h(
        "div",
        { class: "heat-group" },
        h("h3", { title: agg || undefined }, aggregateName(agg), h("span", { class: "muted" }, " · " + members.length + (members.length === 1 ? " host" : " hosts"))),
        h("div", { class: "cells" }, members.map((x) => heatCell(x, rc))),
      ),
    ),
  );
}

function heatCell(x, rc) {
  const p = maxPct(x.usage, rc || undefined);
  const lines = Object.entries(x.usage).map(
    ([k, u]) => k + " " + num(u.used) + "/" + num(u.capacity) + " (" + pctText(pctOf(u)) + ")",
  );
  const cls = ["cell", "health-" + x.health.replace(" ", "-")];
  if (x.enabled === false) cls.push("off");
  if (p === null) cls.push("none");
  const cell = h(
    "a",
    {
      class: cls.join(" "),
      href: "#/hosts/" + x.uuid,
      title: [x.name + " — " + x.health + (x.enabled === false ? ", disabled" : ""), ...lines].join("\n"),
      "data-host": x.name,
    },
    h("span", { class: "name" }, x.name),
    h("span", { class: "pct" }, pctText(p)),
  );
  if (p !== null) cell.style.backgroundColor = heatColor(p);
  return cell;
}

function aggregateTable(hosts) {
  const groups = groupsByAggregate(hosts);
  const rcs = classesOf(hosts);
  if (!groups.length) return note("No hosts yet.");
  return table(
    ["aggregate", "hosts", ...rcs],
    groups.map(([agg, members]) => {
      const u = sumUsage(members);
      return [
        h("span", { title: agg || "" }, aggregateName(agg)),
        String(members.length),
        ...rcs.map((rc) => (u[rc] ? usageCell(u[rc]) : "–")),
      ];
    }),
    "grid aggregates",
  );
}

// ---------------------------------------------------------------- hosts

function hostsPage(view, rest) {
  if (rest.length) return hostPage(view, rest[0]);
  const filter = h("input", { type: "search", id: "host-filter", placeholder: "filter by name", value: state.hostFilter });
  const healthSel = h(
    "select",
    { id: "host-health", "aria-label": "health" },
    ["", "up", "stale", "down", "no agent", "disabled"].map((v) => h("option", { value: v }, v || "any health")),
  );
  healthSel.value = state.hostHealth;
  const body = h("div");
  let cloud = null;
  function draw() {
    if (!cloud) return;
    const f = state.hostFilter.toLowerCase();
    const hosts = cloud.hosts.filter(
      (x) =>
        (!f || x.name.toLowerCase().includes(f)) &&
        (!state.hostHealth ||
          (state.hostHealth === "disabled" ? x.enabled === false : x.health === state.hostHealth)),
    );
    const rcs = classesOf(cloud.hosts);
    fill(body,
      h("p", { class: "muted" }, hosts.length + " of " + cloud.hosts.length + " hosts"),
      table(
        ["name", "uuid", "type", "health", "heartbeat", "enabled", ...rcs],
        hosts.map((x) => [
          hostLink(x),
          h("span", { class: "mono", title: x.uuid }, short(x.uuid)),
          x.type,
          healthBadge(x),
          x.heartbeat_at == null ? "–" : time(x.heartbeat_at),
          enabledBadge(x),
          ...rcs.map((rc) => usageCell(x.usage[rc])),
        ]),
        "grid hosts",
      ),
    );
  }
  filter.addEventListener("input", () => {
    state.hostFilter = filter.value;
    draw();
  });
  healthSel.addEventListener("change", () => {
    state.hostHealth = healthSel.value;
    draw();
  });
  view.append(section("Hosts", h("div", { class: "toolbar" }, filter, healthSel), body));
  async function update() {
    cloud = await loadCloud();
    draw();
  }
  return { update, live: true };
}

function hostPage(view, uuid) {
  const head = h("div");
  const usage = h("div");
  const children = h("div");
  const consumers = h("div");
  const events = h("div");
  view.append(
    head,
    section("Usage", usage),
    section("Consumers", consumers),
    section("Events", events),
    section("Nested providers", children),
  );
  async function update() {
    const c = await caps();
    const p = await api("/providers/" + encodeURIComponent(uuid) + (c.showUsage ? "?include=usage" : ""));
    p.health = healthOf(p);
    const [tree, claims] = await Promise.all([
      api("/providers?in_tree=" + encodeURIComponent(p.uuid)).then((r) => r.providers),
      api("/providers/" + p.uuid + "/claims").then((r) => r.claims),
    ]);
    const u = p.usages ? { usages: p.usages } : await api("/providers/" + p.uuid + "/usages");
    const names = new Map(tree.map((x) => [x.uuid, x.name]));
    names.forEach((name, id) => NAMES.set(id, name));
    fill(head,
      h(
        "section",
        { class: "card" },
        h("h1", {}, p.name, " ", healthBadge(p), " ", enabledBadge(p)),
        h(
          "dl",
          { class: "facts" },
          fact("uuid", h("span", { class: "mono" }, p.uuid)),
          fact("type", p.type),
          fact("parent", p.parent_uuid ? providerRef(p.parent_uuid, names) : "– (a root)"),
          p.root_uuid && p.root_uuid !== p.uuid ? fact("root", providerRef(p.root_uuid, names)) : null,
          fact("heartbeat", p.heartbeat_at == null ? "no agent reports for it" : h("span", {}, time(p.heartbeat_at), " (" + when(p.heartbeat_at) + ")")),
          fact("generation", String(p.generation)),
          fact("traits", p.traits.length ? h("span", { class: "chips" }, p.traits.map((t) => h("span", { class: "chip" }, t))) : "–"),
          fact("aggregates", p.aggregates.length ? h("span", { class: "chips" }, p.aggregates.map((a) => h("span", { class: "chip mono", title: a }, short(a)))) : "–"),
          fact(
            "attributes",
            Object.keys(p.attributes).length
              ? h("span", { class: "chips" }, Object.entries(p.attributes).map(([k, v]) => h("span", { class: "chip" }, k + "=" + JSON.stringify(v))))
              : "–",
          ),
          fact("created", when(p.created_at)),
          fact("updated", h("span", {}, when(p.updated_at), " (", time(p.updated_at), ")")),
        ),
      ),
    );
    const inv = p.inventories || {};
    const rcs = Object.keys(u.usages).sort();
    fill(usage,
      rcs.length
        ? table(
            ["class", "use", "used", "free", "capacity", "total", "reserved", "ratio", "units"],
            rcs.map((rc) => {
              const x = u.usages[rc];
              const i = inv[rc] || {};
              return [
                rc,
                bar(x),
                num(x.used),
                num(x.free),
                num(x.capacity),
                num(i.total),
                num(i.reserved),
                num(i.allocation_ratio),
                unitsText(i),
              ];
            }),
          )
        : note("This provider has no inventory of its own."),
    );
    fill(consumers, consumerTable(claims));
    const kids = tree.filter((x) => x.uuid !== p.uuid);
    fill(children,
      kids.length
        ? table(
            ["name", "parent", "type", "classes"],
            kids.map((x) => [hostLink(x), providerRef(x.parent_uuid, names), x.type, Object.keys(x.inventories).join(", ") || "–"]),
          )
        : note("None: this provider is not a tree."),
    );
    if (c.providerEvents) {
      const r = await api("/providers/" + p.uuid + "/events");
      fill(events, timeline(r.events || []));
    } else {
      fill(events,
        note(
          "This server keeps no provider event history (GET /v1/providers/{uuid}/events is not in its API). " +
            "Its live claims are listed under Consumers above.",
          "degraded",
        ),
      );
    }
  }
  return { update, live: true };
}

function unitsText(i) {
  const out = [];
  if (i.min_unit > 1) out.push("min " + num(i.min_unit));
  if (i.max_unit < i.total) out.push("max " + num(i.max_unit));
  if (i.step_size > 1) out.push("step " + num(i.step_size));
  return out.join(", ") || "any";
}

function fact(name, value) {
  return [h("dt", {}, name), h("dd", {}, value)];
}

function providerRef(uuid, names) {
  const name = (names && names.get(uuid)) || NAMES.get(uuid) || short(uuid);
  return h("a", { href: "#/hosts/" + uuid, title: uuid }, name);
}

function consumerTable(claims) {
  if (!claims.length) return note("No live claims or allocations on this provider.");
  const by = new Map();
  for (const c of claims) {
    if (!by.has(c.consumer_uuid)) by.set(c.consumer_uuid, []);
    by.get(c.consumer_uuid).push(c);
  }
  return table(
    ["consumer", "status", "amounts", "request", "project", "created", "expires"],
    [...by.entries()].flatMap(([consumer, cs]) =>
      cs.map((c) => [
        h("span", { class: "mono", title: consumer }, short(consumer)),
        badge(c.status === "confirmed" ? "allocation" : "claim", c.status),
        Object.entries(c.amounts)
          .map(([rc, n]) => rc + " " + num(Math.abs(n)))
          .join(", "),
        c.request_uuid ? requestLink(c.request_uuid) : "–",
        c.project_id || "–",
        time(c.created_at),
        c.expires_at ? time(c.expires_at) : "never (confirmed)",
      ]),
    ),
    "grid consumers",
  );
}

// ---------------------------------------------------------------- events

function timeline(events) {
  if (!events.length) return note("No events yet.");
  const sorted = [...events].sort((a, b) => (eventTime(a) || 0) - (eventTime(b) || 0));
  return h(
    "ol",
    { class: "timeline" },
    sorted.map((e) => {
      const name = e.event || e.type || e.kind || "event";
      const rest = { ...e };
      for (const k of ["at", "time", "event", "type", "kind", "message", "reason"]) delete rest[k];
      const failed = /fail|expire|stale|down|reject|error|partial/.test(name);
      return h(
        "li",
        { class: failed ? "bad" : "" },
        h("span", { class: "when" }, time(eventTime(e))),
        badge(name, "event-" + name.replace(/[^a-z]+/g, "-")),
        eventFacts(e),
        e.message || e.reason ? h("span", { class: "msg" }, e.message || e.reason) : null,
        rest.details && rest.details.groups ? noValidHost(rest.details) : null,
        Object.keys(rest).length ? h("details", {}, h("summary", {}, "details"), jsonBlock(rest)) : null,
      );
    }),
  );
}

// The parts of an event an operator reads first: amounts, where, for whom.
function eventFacts(e) {
  const out = [];
  if (e.amounts && typeof e.amounts === "object") {
    out.push(
      Object.entries(e.amounts)
        .map(([rc, n]) => rc + " " + num(Math.abs(n)))
        .join(", "),
    );
  }
  if (e.provider_uuid) out.push(h("span", {}, "on ", providerRef(e.provider_uuid)));
  if (e.request_uuid) out.push(h("span", {}, "request ", requestLink(e.request_uuid)));
  if (e.consumer_uuid) out.push(h("span", { title: e.consumer_uuid }, "consumer " + short(e.consumer_uuid)));
  if (e.placed !== undefined && e.count !== undefined) out.push(e.placed + " of " + e.count + " placed");
  if (!out.length) return null;
  return h("span", { class: "facts-line" }, out.map((x, i) => [i ? " · " : "", x]));
}

function eventTime(e) {
  return e.at !== undefined ? e.at : e.time;
}

// The per-group reasons a request found no host, with numbers.
function noValidHost(details) {
  return table(
    ["group", "resources", "candidates", "passed filters", "rejected", "store"],
    details.groups.map((g) => [
      g.group || "(default)",
      Object.entries(g.resources || {})
        .map(([rc, n]) => rc + "=" + n)
        .join(", "),
      String(g.candidates ?? "–"),
      String(g.passed_filters ?? "–"),
      Object.keys(g.rejected || {}).length
        ? h("ul", {}, Object.entries(g.rejected).map(([k, v]) => h("li", {}, k + ": " + (typeof v === "string" ? v : JSON.stringify(v)))))
        : "–",
      g.store || "–",
    ]),
    "grid why",
  );
}

// ---------------------------------------------------------------- requests

// What a server that does not list them in its OpenAPI document knows.
const STATUSES = ["pending", "scheduled", "building", "active", "failed", "deleted"];

function requestsPage(view, rest) {
  if (rest.length) return requestPage(view, rest[0]);
  const sel = h("select", { id: "request-status", "aria-label": "status" }, h("option", { value: "" }, "any status"));
  caps().then((c) => {
    fill(sel, ["", ...c.statuses].map((s) => h("option", { value: s }, s || "any status")));
    sel.value = state.requestStatus;
  });
  const body = h("div");
  sel.addEventListener("change", () => {
    state.requestStatus = sel.value;
    refresh(generation);
  });
  view.append(section("Requests", h("div", { class: "toolbar" }, sel, h("span", { class: "muted" }, "newest 100")), body));
  async function update() {
    const q = "/requests?limit=100" + (state.requestStatus ? "&status=" + state.requestStatus : "");
    const { requests } = await api(q);
    requests.sort((a, b) => b.created_at - a.created_at);
    fill(body,
      requests.length
        ? table(
            ["request", "status", "created", "project", "count", "asks for", "last event"],
            requests.map((r) => {
              const last = r.reason
                ? { event: r.status, message: r.reason }
                : r.history.length
                  ? r.history[r.history.length - 1]
                  : null;
              return [
                requestLink(r.uuid),
                badge(r.status, "status-" + r.status),
                time(r.created_at),
                r.project_id || "–",
                String(r.count),
                groupsText(r.groups),
                last ? (last.event || "") + (last.message ? ": " + last.message : "") : "–",
              ];
            }),
            "grid requests",
          )
        : note("No requests" + (state.requestStatus ? " with status " + state.requestStatus : "") + "."),
    );
  }
  return { update, live: true };
}

function groupsText(groups) {
  return groups
    .map((g) => {
      const res = Object.entries(g.resources)
        .map(([rc, n]) => rc + "=" + n)
        .join(",");
      const traits = g.required_traits.length ? " +" + g.required_traits.join(" +") : "";
      return (g.name ? g.name + ": " : "") + res + traits;
    })
    .join(" | ");
}

function requestPage(view, uuid) {
  const head = h("div");
  const groups = h("div");
  const placements = h("div");
  const history = h("div");
  view.append(head, section("Placements", placements), section("History", history), section("Groups", groups));
  const names = new Map();
  async function update() {
    const [r, c] = await Promise.all([api("/requests/" + uuid), caps()]);
    const providers = new Set();
    r.placements.forEach((pl) => pl.claims.forEach((cl) => providers.add(cl.provider_uuid)));
    await mapLimit([...providers].filter((u) => !names.has(u)), USAGE_FETCHES, async (u) => {
      try {
        names.set(u, (await api("/providers/" + u)).name);
        NAMES.set(u, names.get(u));
      } catch (e) {
        if (e.status !== 404) throw e;
      }
    });
    fill(head,
      h(
        "section",
        { class: "card" },
        h("h1", {}, "Request ", h("span", { class: "mono" }, r.uuid), " ", badge(r.status, "status-" + r.status)),
        h(
          "dl",
          { class: "facts" },
          fact("project / user", (r.project_id || "–") + " / " + (r.user_id || "–")),
          fact("count", String(r.count) + (r.all_or_nothing ? " (all or nothing)" : "")),
          fact("created", h("span", {}, when(r.created_at), " (", time(r.created_at), ")")),
          fact("updated", h("span", {}, when(r.updated_at), " (", time(r.updated_at), ")")),
          r.reason ? fact("reason", h("span", { class: "reason" }, r.reason)) : null,
          fact("placed", r.placements.length + " of " + r.count + " instances hold live claims"),
          fact("hints", hintsText(r.hints)),
        ),
        h("p", {}, h("a", { href: "#/explain?from=" + r.uuid, class: "button" }, "Explain this request")),
      ),
    );
    fill(placements,
      r.placements.length
        ? table(
            ["consumer", "claim", "provider", "amounts", "status", "expires"],
            r.placements.flatMap((pl) =>
              pl.claims.map((cl) => [
                h("span", { class: "mono", title: pl.consumer_uuid }, short(pl.consumer_uuid)),
                h("span", { class: "mono", title: cl.uuid }, short(cl.uuid)),
                providerRef(cl.provider_uuid, names),
                Object.entries(cl.amounts)
                  .map(([rc, n]) => rc + " " + num(Math.abs(n)))
                  .join(", "),
                badge(cl.status === "confirmed" ? "allocation" : "claim", cl.status),
                cl.expires_at ? time(cl.expires_at) : "never",
              ]),
            ),
            "grid placements",
          )
        : note("No live claims: " + (r.status === "failed" ? "it failed (see its history)." : "none taken, or all released or expired.")),
    );
    let events = r.history;
    if (c.requestEvents) {
      events = (await api("/requests/" + r.uuid + "/events")).events || r.history;
    }
    fill(history, timeline(events));
    fill(groups,
      table(
        ["group", "resources", "required", "forbidden", "any of", "attributes", "aggregates", "type", "span"],
        r.groups.map((g) => [
          g.name || "(default)",
          Object.entries(g.resources)
            .map(([rc, n]) => rc + "=" + num(n))
            .join(", "),
          g.required_traits.join(", ") || "–",
          g.forbidden_traits.join(", ") || "–",
          g.any_traits.map((s) => "(" + s.join(" | ") + ")").join(" ") || "–",
          g.attributes.map((a) => a.name + " " + a.op + " " + JSON.stringify(a.value)).join(", ") || "–",
          g.member_of.map((s) => s.map(short).join("|")).join(", ") || "–",
          g.provider_type || "any",
          g.span,
        ]),
      ),
    );
  }
  return { update, live: true };
}

function hintsText(hints) {
  const out = [];
  if (hints.group) out.push("server group " + hints.group + (hints.group_policy ? " (" + hints.group_policy + ")" : ""));
  if (hints.same_host.length) out.push("same host as " + hints.same_host.length + " consumer(s)");
  if (hints.different_host.length) out.push("different host from " + hints.different_host.length + " consumer(s)");
  out.push(hints.strategy);
  return out.join(", ");
}

// ---------------------------------------------------------------- explain

// "VCPU=2,MEMORY_MB:512" -> {VCPU: 2, MEMORY_MB: 512}; both separators, as the CLI.
function parseResources(text) {
  const out = {};
  for (const part of text.split(",").map((s) => s.trim()).filter(Boolean)) {
    const m = /^([A-Z0-9_]+)\s*[=:]\s*(\d+)$/.exec(part);
    if (!m) throw new Error("resources must look like VCPU=2,MEMORY_MB=2048; got " + JSON.stringify(part));
    out[m[1]] = Number(m[2]);
  }
  return out;
}

function list(text) {
  return text.split(",").map((s) => s.trim()).filter(Boolean);
}

function explainPage(view, rest, query) {
  const resources = h("input", { id: "ex-resources", placeholder: "VCPU=2,MEMORY_MB=2048", value: "VCPU=1" });
  const required = h("input", { id: "ex-required", placeholder: "HW_CPU_X86_AVX2, CUSTOM_GPU" });
  const forbidden = h("input", { id: "ex-forbidden", placeholder: "CUSTOM_SLOW" });
  const memberOf = h("input", { id: "ex-member-of", placeholder: "aggregate uuid, … (any of)" });
  const count = h("input", { id: "ex-count", type: "number", min: "1", value: "1" });
  const raw = h("textarea", { id: "ex-body", rows: "8", placeholder: '{"groups": [{"resources": {"VCPU": 2}}]}' });
  const go = h("button", { type: "submit", id: "ex-go" }, "Explain");
  const out = h("div", { id: "ex-out" });
  const form = h(
    "form",
    { class: "explain", autocomplete: "off" },
    h("label", {}, "resources", resources),
    h("label", {}, "required traits", required),
    h("label", {}, "forbidden traits", forbidden),
    h("label", {}, "member of", memberOf),
    h("label", {}, "count", count),
    h("details", {}, h("summary", {}, "or a whole request body (JSON, as POST /v1/requests takes)"), raw),
    h("div", {}, go),
  );
  const intro = h("div");
  view.append(section("Explain a request", intro, form), section("Result", out));
  out.append(note("Nothing yet: fill in the form. Nothing is claimed."));
  const from = query.get("from");
  if (from) {
    api("/requests/" + from)
      .then((r) => {
        const body = { groups: r.groups, group_policy: r.group_policy, same_subtree: r.same_subtree, hints: r.hints, count: r.count };
        raw.value = JSON.stringify(body, null, 2);
        raw.closest("details").open = true;
      })
      .catch(showError);
  }
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    let body;
    try {
      if (raw.value.trim()) body = JSON.parse(raw.value);
      else {
        const group = { resources: parseResources(resources.value) };
        if (list(required.value).length) group.required_traits = list(required.value);
        if (list(forbidden.value).length) group.forbidden_traits = list(forbidden.value);
        if (list(memberOf.value).length) group.member_of = [list(memberOf.value)];
        body = { groups: [group], count: Number(count.value) || 1 };
      }
    } catch (e) {
      fill(out, note(e.message, "bad"));
      return;
    }
    go.disabled = true;
    try {
      const result = await api("/requests?dry_run=true", { method: "POST", body });
      clearError();
      fill(out, isDecision(result) ? decision(result) : explanation(result));
    } catch (e) {
      if (e instanceof ApiError && e.details) {
        fill(out, note(e.status + " " + e.code + ": " + e.message, "bad"), e.details.groups ? noValidHost(e.details) : null, h("details", {}, h("summary", {}, "details"), jsonBlock(e.details)));
      } else if (e instanceof ApiError) {
        fill(out, note(e.status + " " + e.code + ": " + e.message, "bad"));
      } else throw e;
    } finally {
      go.disabled = false;
    }
  });
  caps().then((c) => {
    if (c.dryRun) {
      fill(intro,
        note("Runs the scheduler on a request without claiming anything (POST /v1/requests?dry_run=true): what the store returned, which filter rejected whom and why, the weights, and what would be chosen."),
      );
    } else {
      go.disabled = true;
      fill(intro,
        note(
          "This server cannot explain a request without claiming: POST /v1/requests?dry_run=true is not in its API (/v1/openapi.json). " +
            "A failed request's page still shows why it found no host.",
          "degraded",
        ),
      );
    }
  });
  return null; // a form: never refreshed under the operator's hands
}

function isDecision(r) {
  return r && Array.isArray(r.groups) && r.groups.every((g) => Array.isArray(g.candidates));
}

function amounts(obj) {
  return Object.entries(obj || {})
    .map(([rc, n]) => rc + " " + num(n))
    .join(", ");
}

// The scheduler's decision for one instance (claimant.scheduler.explain):
// per group, every candidate the store returned, the filter that rejected it
// and why, each weigher's part of its weight, and the pick.
function decision(r) {
  const weighers = Object.keys(r.weighers || {});
  return h(
    "div",
    { class: "decision" },
    h(
      "p",
      { class: "verdict " + (r.fits ? "fits" : "nofit") },
      r.fits ? "It fits." : "It does not fit: no valid host.",
      " Instance " + r.instance + " of " + r.count + ", " + r.strategy + ", picking at random among the best " + r.host_subset_size + ".",
    ),
    h(
      "dl",
      { class: "facts" },
      fact("filters", (r.filters || []).join(", ") || "–"),
      fact("weighers", weighers.map((w) => w + " ×" + r.weighers[w]).join(", ") || "–"),
    ),
    r.groups.map((g) => {
      const pick = new Set(g.would_pick_among || []);
      const used = weighers.filter((w) => g.candidates.some((c) => c.weights && w in c.weights));
      const rows = [...g.candidates].sort((a, b) => (a.rank || 1e9) - (b.rank || 1e9));
      const names = new Map([...g.candidates, ...(g.not_eligible || [])].map((c) => [c.uuid, c.name]));
      return h(
        "div",
        { class: "decision-group" },
        h(
          "h3",
          {},
          "group " + (g.group || "(default)") + " · " + amounts(g.resources) + " · ",
          g.would_choose ? h("span", {}, "would choose ", providerRef(g.would_choose, names)) : h("span", { class: "reason" }, "no host"),
        ),
        h(
          "p",
          { class: "muted" },
          g.candidates.length + " candidates from the store, " + g.passed_filters + " passed the filters" +
            (pick.size ? "; ★ the best " + pick.size + ", among which a placement picks at random" : ""),
        ),
        rows.length
          ? table(
              ["rank", "provider", "free", "filters", "weight", ...used],
              rows.map((c) => [
                c.rank ? String(c.rank) + (pick.has(c.uuid) ? " ★" : "") : "–",
                providerRef(c.uuid, names),
                amounts(c.free),
                c.passed ? badge("passed", "passed") : h("span", {}, badge(c.rejected_by || "rejected", "rejected"), " ", c.reason || ""),
                c.total !== undefined ? num(c.total) : "–",
                ...used.map((w) => (c.weights && w in c.weights ? num(c.weights[w]) : "–")),
              ]),
              "grid candidates",
            )
          : null,
        g.not_eligible && g.not_eligible.length
          ? h(
              "div",
              {},
              h("p", {}, "Would fit but are not eligible:"),
              h("ul", {}, g.not_eligible.map((x) => h("li", {}, providerRef(x.uuid, names), ": " + x.why))),
            )
          : null,
      );
    }),
  );
}

// Renders whatever the explain answer holds: tables for lists of records,
// definition lists for records, text for the rest.
function explanation(value, depth = 0) {
  if (value === null || value === undefined) return h("span", { class: "muted" }, "–");
  if (Array.isArray(value)) {
    if (!value.length) return h("span", { class: "muted" }, "none");
    if (value.every((v) => v && typeof v === "object" && !Array.isArray(v))) {
      const keys = [...new Set(value.flatMap((v) => Object.keys(v)))];
      return table(keys, value.map((v) => keys.map((k) => explanation(v[k], depth + 1))), "grid explain-table");
    }
    return h("span", {}, value.map((v) => (typeof v === "object" ? JSON.stringify(v) : String(v))).join(", "));
  }
  if (typeof value === "object") {
    if (depth > 3) return h("code", {}, JSON.stringify(value));
    return h("dl", { class: "facts explain-" + depth }, Object.entries(value).map(([k, v]) => fact(k, explanation(v, depth + 1))));
  }
  return h("span", {}, typeof value === "number" ? num(value) : String(value));
}

// ---------------------------------------------------------------- start

const PAGES = { overview: overviewPage, hosts: hostsPage, requests: requestsPage, explain: explainPage };

function start() {
  const input = document.getElementById("token");
  const stored = sessionStorage.getItem(TOKEN_KEY);
  if (stored) input.value = stored;
  document.getElementById("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (input.value) sessionStorage.setItem(TOKEN_KEY, input.value);
    else sessionStorage.removeItem(TOKEN_KEY);
    route();
  });
  document.getElementById("token-clear").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    input.value = "";
    route();
  });
  document.getElementById("live").addEventListener("change", schedule);
  document.getElementById("interval").addEventListener("change", schedule);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) schedule();
  });
  document.getElementById("api-docs").setAttribute("href", API + "/docs");
  window.addEventListener("hashchange", route);
  route();
}

start();
