// The page of `image-transmit ui`: no framework and no build step. Every request carries the
// token of the address the server printed; the server never sends credentials back.
"use strict";

const token = new URLSearchParams(location.search).get("token") || "";
const $ = (id) => document.getElementById(id);
let words = {};
let language = "en";
let current = null; // the job this page follows
let state = null;
let lastCounts = null; // the status line's figures, redrawn when the language changes

const t = (key, values = {}) =>
  (words[key] || key).replace(/%\{(\w+)\}/g, (_, name) => (name in values ? values[name] : ""));

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { "x-token": token, "content-type": "application/json", ...(options.headers || {}) },
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function say(message) {
  $("message").textContent = message || "";
}

async function setLanguage(wanted) {
  language = wanted;
  localStorage.setItem("image-transmit-language", wanted);
  words = await api(`/api/i18n?lang=${encodeURIComponent(wanted)}`);
  $("lang").value = wanted;
  document.documentElement.lang = wanted;
  document.querySelectorAll("[data-i18n]").forEach((node) => (node.textContent = t(node.dataset.i18n)));
  document.querySelectorAll("[data-i18n-placeholder]").forEach((node) => (node.placeholder = t(node.dataset.i18nPlaceholder)));
  renderState();
  if (lastCounts) showStatus(lastCounts);
  if ($("bundle-meta").value) showBundle();
}

function showStatus(counts) {
  lastCounts = counts;
  $("status").textContent = statusLine(counts);
}

function fill(select, values, keep) {
  const before = keep ? select.value : null;
  select.replaceChildren(...values.map((value) => new Option(value, value)));
  if (before && values.includes(before)) select.value = before;
}

async function loadState() {
  state = await api("/api/state");
  renderState();
}

function renderState() {
  if (!state) return;
  fill($("source"), state.sources, true);
  fill($("target"), state.targets, true);
  fill($("upload-meta"), state.metas, true);
  fill($("base-meta"), state.metas, true);
  fill($("bundle-meta"), ["", ...state.metas], true);
  if (!$("maxconn").value) $("maxconn").value = state.maxconn;
  if (!$("retries").value) $("retries").value = state.retries;
  $("cache").textContent = state.cache ? t("ui.on") : t("ui.off");
  const history = $("history");
  history.replaceChildren(
    ...state.jobs.map((job) => {
      const item = document.createElement("li");
      const outcome = job.running ? "…" : t("ui.job_exit", { code: job.outcome.exit });
      item.textContent = `#${job.id} ${t("ui.mode_" + job.mode)} ${job.started} ${outcome}`;
      item.dataset.id = job.id;
      item.onclick = () => showHistory(job.id);
      return item;
    })
  );
}

function bytes(count) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = count;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(1)}${units[unit]}`;
}

function statusLine(c) {
  return [
    `${t("status.invalid")}:${c.invalid}`,
    `${t("status.total")}:${c.total}`,
    `${t("status.succeeded")}:${c.succeeded}`,
    `${t("status.failed")}:${c.failed}`,
    `${t("status.doing")}:${c.doing}`,
    `${t("status.speed")}:${bytes(c.speed)}/s`,
    `${t("status.transferred")}:${bytes(c.bytes)}`,
    `${t("status.elapsed")}:${c.elapsed_seconds}s`,
  ].join(" ");
}

function busy(running) {
  for (const id of ["btn-transmit", "btn-save", "btn-upload", "btn-watch", "btn-verify"]) $(id).disabled = running;
  $("btn-stop").disabled = !running;
}

function log(text) {
  const area = $("log");
  area.textContent += text + "\n";
  area.scrollTop = area.scrollHeight;
}

function imageRow(image) {
  let row = document.querySelector(`#images tr[data-image="${image}"]`);
  if (!row) {
    row = document.createElement("tr");
    row.dataset.image = image;
    row.innerHTML = "<td class=name></td><td><progress max=1 value=0></progress></td><td class=state></td>";
    $("images").tBodies[0].append(row);
  }
  return row;
}

function showResult(report) {
  const result = $("result");
  result.replaceChildren();
  if (!report) return;
  const add = (title, entries) => {
    if (!entries.length) return;
    const heading = document.createElement("h3");
    heading.textContent = title;
    const list = document.createElement("ul");
    list.className = "err";
    list.replaceChildren(
      ...entries.map(([name, error]) => {
        const item = document.createElement("li");
        item.textContent = `${name}: ${error}`;
        return item;
      })
    );
    result.append(heading, list);
  };
  const summary = document.createElement("p");
  summary.id = "summary";
  const s = report.summary;
  summary.textContent = t("ui.summary", { total: s.total, succeeded: s.succeeded, failed: s.failed, invalid: s.invalid });
  result.append(summary);
  add(t("ui.invalid_images"), report.invalid.map((i) => [i.line, i.error]));
  add(t("ui.failed_images"), report.images.filter((i) => i.status === "failed").map((i) => [i.source, i.error]));
}

function follow(id) {
  current = id;
  busy(true);
  $("log").textContent = "";
  $("images").tBodies[0].replaceChildren();
  $("result").replaceChildren();
  const events = new EventSource(`/api/jobs/${id}/events?token=${encodeURIComponent(token)}`);
  events.onmessage = (message) => {
    const event = JSON.parse(message.data);
    switch (event.kind) {
      case "log":
        log(event.text);
        break;
      case "status":
        showStatus(event.counts);
        for (const image of event.images) {
          const bar = imageRow(image.image).querySelector("progress");
          bar.max = Math.max(image.total, 1);
          bar.value = image.done;
        }
        break;
      case "image_started":
        imageRow(event.image).querySelector(".name").textContent = event.target;
        break;
      case "image_done": {
        const row = imageRow(event.image);
        row.querySelector(".state").textContent = event.unchanged ? t("ui.unchanged") : t("ui.succeeded");
        row.querySelector(".state").className = "state ok";
        const bar = row.querySelector("progress");
        bar.value = bar.max;
        break;
      }
      case "image_failed": {
        const row = imageRow(event.image);
        row.querySelector(".state").textContent = `${t("ui.failed")}: ${event.error}`;
        row.querySelector(".state").className = "state err";
        break;
      }
      case "end":
        events.close();
        current = null;
        busy(false);
        if (event.report) showStatus({
          invalid: event.report.summary.invalid, total: event.report.summary.total,
          succeeded: event.report.summary.succeeded, failed: event.report.summary.failed, doing: 0,
          speed: 0, bytes: event.report.bytes_transferred, elapsed_seconds: Math.round(event.report.elapsed_seconds),
        });
        showResult(event.report);
        log(t("ui.job_exit", { code: event.exit }));
        loadState();
        break;
    }
  };
}

async function start(mode) {
  say("");
  // The last job's results go at once, so nothing on the page is mistaken for this one's.
  $("result").replaceChildren();
  const incremental = $("archive-mode").value === "incr";
  const request = {
    mode,
    source: $("source").value,
    target: $("target").value,
    list: $("list").value,
    maxconn: Number($("maxconn").value) || null,
    retries: $("retries").value === "" ? null : Number($("retries").value),
    incremental_from: mode === "save" && incremental && $("base-meta").value ? [$("base-meta").value] : [],
    single_file: $("single-file").checked,
    meta: mode === "upload" ? $("upload-meta").value : "",
    language,
  };
  try {
    const { id } = await api("/api/jobs", { method: "POST", body: JSON.stringify(request) });
    follow(id);
  } catch (error) {
    say(error.message);
  }
}

async function verify() {
  say("");
  try {
    const result = await api("/api/verify", {
      method: "POST",
      body: JSON.stringify({ source: $("source").value, target: $("target").value, list: $("list").value }),
    });
    const table = document.createElement("table");
    table.id = "verify";
    const head = table.insertRow();
    for (const key of ["ui.verify_source", "ui.verify_target", "ui.verify_exists"]) {
      const cell = document.createElement("th");
      cell.textContent = t(key);
      head.append(cell);
    }
    for (const pair of result.pairs) {
      const row = table.insertRow();
      row.insertCell().textContent = pair.source;
      row.insertCell().textContent = pair.target;
      const exists = row.insertCell();
      exists.textContent = pair.exists ? t("ui.exists_yes") : `${t("ui.exists_no")} ${pair.error || ""}`;
      exists.className = pair.exists ? "ok" : "err";
    }
    for (const line of result.invalid) {
      const row = table.insertRow();
      row.insertCell().textContent = line.line;
      const error = row.insertCell();
      error.colSpan = 2;
      error.textContent = line.error;
      error.className = "err";
    }
    $("result").replaceChildren(table);
  } catch (error) {
    say(error.message);
  }
}

async function showHistory(id) {
  const job = await api(`/api/jobs/${id}`);
  const view = $("history-view");
  view.replaceChildren();
  const title = document.createElement("p");
  title.textContent = `#${job.id} ${t("ui.mode_" + job.mode)} ${job.started}`;
  view.append(title);
  if (job.outcome && job.outcome.report) {
    const s = job.outcome.report.summary;
    const line = document.createElement("p");
    line.textContent = t("ui.summary", { total: s.total, succeeded: s.succeeded, failed: s.failed, invalid: s.invalid });
    view.append(line);
  }
  if (job.running) follow(id);
}

async function showBundle() {
  const meta = $("bundle-meta").value;
  const view = $("bundle-view");
  view.replaceChildren();
  if (!meta) return;
  try {
    const bundle = await api(`/api/bundle?meta=${encodeURIComponent(meta)}`);
    const part = (title, items) => {
      const heading = document.createElement("h3");
      heading.textContent = title;
      const list = document.createElement("ul");
      list.replaceChildren(...items.map((text) => Object.assign(document.createElement("li"), { textContent: text })));
      view.append(heading, list);
    };
    part(t("ui.bundle_images"), bundle.images.map((image) => image.name));
    part(t("ui.bundle_datafiles"), bundle.datafiles.map((file) => `${file.name} (${bytes(file.size)})`));
    part(t("ui.bundle_bases"), bundle.bases.length ? bundle.bases : [t("ui.none")]);
  } catch (error) {
    say(error.message);
  }
}

// A bundle picked in the browser (meta file and data files) is copied into data/uploads/ on
// the server, which then offers its meta file for Upload.
async function receiveBundle() {
  const files = [...$("bundle-files").files];
  if (!files.length) return;
  const batch = `${Date.now()}`;
  say(t("ui.copying_files", { count: files.length }));
  try {
    let meta = null;
    for (const file of files) {
      const response = await fetch(`/api/uploads/${batch}/${encodeURIComponent(file.name)}`, {
        method: "PUT",
        headers: { "x-token": token },
        body: file,
      });
      const body = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error(body.error || response.statusText);
      if (file.name.endsWith("_meta.yaml")) meta = body.path;
    }
    await loadState();
    if (meta) $("upload-meta").value = meta;
    say("");
  } catch (error) {
    say(error.message);
  }
}

async function addRegistry(event) {
  event.preventDefault();
  try {
    await api("/api/registries", {
      method: "POST",
      body: JSON.stringify({
        side: $("reg-side").value,
        name: $("reg-name").value,
        registry: $("reg-address").value,
        user: $("reg-user").value,
        password: $("reg-password").value,
        repository: $("reg-repository").value,
        skiptlsverify: $("reg-skiptls").checked,
      }),
    });
    $("registry-form").reset();
    $("registry-form").hidden = true;
    await loadState();
  } catch (error) {
    say(error.message);
  }
}

function wire() {
  $("btn-transmit").onclick = () => start("transmit");
  $("btn-save").onclick = () => start("save");
  $("btn-upload").onclick = () => start("upload");
  $("btn-watch").onclick = () => start("watch");
  $("btn-verify").onclick = verify;
  $("btn-stop").onclick = () => current !== null && api(`/api/jobs/${current}/stop`, { method: "POST" }).catch((e) => say(e.message));
  $("lang").onchange = () => setLanguage($("lang").value);
  $("archive-mode").onchange = () => ($("base-meta-label").hidden = $("archive-mode").value !== "incr");
  $("bundle-meta").onchange = showBundle;
  $("bundle-files").onchange = receiveBundle;
  $("btn-add-registry").onclick = () => ($("registry-form").hidden = false);
  $("reg-cancel").onclick = () => ($("registry-form").hidden = true);
  $("registry-form").onsubmit = addRegistry;
  // As in the original GUI, the list keeps one image per line whatever was pasted.
  $("list").onchange = () => ($("list").value = $("list").value.replace(/\r\n?/g, "\n"));
}

async function main() {
  wire();
  await loadState();
  const saved = localStorage.getItem("image-transmit-language");
  const browser = (navigator.language || "").toLowerCase().startsWith("zh") ? "zh-CN" : "en";
  await setLanguage(saved || state.configured_language || browser);
  $("single-file").checked = state.singlefile;
  const running = state.jobs.find((job) => job.running);
  if (running) follow(running.id);
}

main().catch((error) => say(error.message));
