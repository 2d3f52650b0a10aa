// The page of `image-transmit ui`: no framework and no build step. Every request carries the
// token of the address the server printed and the page's language; the server never sends
// credentials back. Each task has a screen of its own and its own fields: nothing typed for one
// task is ever used by another.
"use strict";

const token = new URLSearchParams(location.search).get("token") || "";
const $ = (id) => document.getElementById(id);
const TASKS = ["transmit", "save", "import", "watch", "history", "settings"];
let words = {};
let language = "en";
let state = null;
let job = null; // the job the panel shows: {id, mode, request, report, exit, log}
let events = null;
let bundle = null; // the package chosen on the import screen
let importPlanned = false; // whether the target's answer for that package is in
let browsing = "";

const t = (key, values = {}) =>
  (words[key] || key).replace(/%\{(\w+)\}/g, (_, name) => (name in values ? values[name] : ""));

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { "x-token": token, "x-lang": language, "content-type": "application/json", ...(options.headers || {}) },
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function notice(message, kind = "error") {
  const box = $("notice");
  box.textContent = message || "";
  box.className = kind === "info" ? "notice info" : "notice";
  box.hidden = !message;
  if (message) box.scrollIntoView({ block: "nearest" });
}

const element = (tag, properties = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), properties);
  node.append(...children);
  return node;
};

function bytes(count) {
  if (count === null || count === undefined) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = count;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
}

// A job's start (RFC 3339 from the server) in the person's time zone and language.
function when(started) {
  const time = new Date(started);
  return Number.isNaN(time.getTime()) ? started : time.toLocaleString(language);
}

function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return t("ui.seconds", { n: s });
  if (s < 3600) return t("ui.minutes", { m: Math.floor(s / 60), s: s % 60 });
  return t("ui.hours", { h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
}

// ---- language and screens ----

async function setLanguage(wanted) {
  language = wanted;
  localStorage.setItem("image-transmit-language", wanted);
  words = await api(`/api/i18n?lang=${encodeURIComponent(wanted)}`);
  $("lang").value = wanted;
  document.documentElement.lang = wanted;
  document.title = t("ui.title");
  document.querySelectorAll("[data-i18n]").forEach((node) => (node.textContent = t(node.dataset.i18n)));
  document.querySelectorAll("[data-i18n-placeholder]").forEach((node) => (node.placeholder = t(node.dataset.i18nPlaceholder)));
  renderState();
  importButton();
  if (bundle) showBundle(bundle);
  if (job) renderJob();
}

function showTask(task) {
  if (!TASKS.includes(task)) task = "transmit";
  for (const name of TASKS) {
    $(`screen-${name}`).hidden = name !== task;
    document.querySelector(`[data-task="${name}"]`).setAttribute("aria-selected", String(name === task));
  }
  if (location.hash !== `#${task}`) history.replaceState(null, "", `${location.search}#${task}`);
  notice("");
  if (task === "import" && !browsing) browse("");
}

// ---- what the server knows ----

async function loadState() {
  state = await api("/api/state");
  renderState();
}

function fill(select, values, placeholder) {
  const before = select.value;
  const options = values.map((value) => new Option(value, value));
  if (placeholder && !values.length) options.unshift(new Option(placeholder, ""));
  select.replaceChildren(...options);
  if (values.includes(before)) select.value = before;
}

function renderState() {
  if (!state) return;
  document.querySelectorAll(".source-picker").forEach((select) => fill(select, state.sources, t("ui.no_source_yet")));
  document.querySelectorAll(".target-picker").forEach((select) => fill(select, state.targets, t("ui.no_target_yet")));
  fill($("save-base"), state.metas, t("ui.no_package_yet"));
  if (!$("maxconn").value) $("maxconn").value = state.maxconn;
  if (!$("retries").value) $("retries").value = state.retries;
  $("cache").textContent = state.cache ? t("ui.on") : t("ui.off");
  $("welcome").hidden = state.registries.length > 0;
  $("config-where").textContent = state.config_path
    ? t("ui.config_at", { path: state.config_path })
    : t("ui.config_none");
  renderRegistries();
  renderHistory();
}

function renderRegistries() {
  $("registries").replaceChildren(
    ...state.registries.map((registry) => {
      const result = element("span", { className: "test-result" });
      const test = element("button", { type: "button", textContent: t("ui.test") });
      test.dataset.testid = "registry-test";
      test.onclick = async () => {
        result.textContent = t("ui.testing");
        result.className = "test-result";
        try {
          const answer = await api("/api/registries/test", {
            method: "POST",
            body: JSON.stringify({ side: registry.side, name: registry.name }),
          });
          result.textContent = answer.message;
          result.className = answer.ok ? "test-result ok" : "test-result err";
        } catch (error) {
          result.textContent = error.message;
          result.className = "test-result err";
        }
      };
      const row = element(
        "tr",
        {},
        element("td", { textContent: registry.name }),
        element("td", { textContent: t(registry.side === "source" ? "ui.role_source" : "ui.role_target") }),
        element("td", { textContent: registry.address }),
        element("td", { textContent: registry.user ? registry.user : t("ui.anonymous") }),
        element("td", { textContent: registry.kept ? t("ui.kept_yes") : t("ui.kept_session") }),
        element("td", {}, test, " ", result)
      );
      row.dataset.testid = "registry-row";
      row.dataset.name = registry.name;
      return row;
    })
  );
}

function outcomeWords(entry) {
  if (entry.running) return t("ui.running");
  const report = entry.outcome && entry.outcome.report;
  if (!report) return entry.mode === "watch" ? t("ui.watch_ended") : t("ui.did_not_run");
  const s = report.summary;
  if (s.cancelled) return t("ui.outcome_stopped", { done: s.succeeded, total: s.total });
  if (s.failed + s.invalid === 0) return t("ui.outcome_ok", { done: s.succeeded });
  return t("ui.outcome_troubled", { done: s.succeeded, total: s.total });
}

function renderHistory() {
  $("history").replaceChildren(
    ...state.jobs.map((entry) => {
      const open = element("button", { type: "button", textContent: t("ui.show") });
      open.onclick = () => openJob(entry.id);
      const row = element(
        "tr",
        {},
        element("td", { textContent: entry.id }),
        element("td", { textContent: t(`ui.mode_${entry.mode}`) }),
        element("td", { textContent: when(entry.started) }),
        element("td", { textContent: outcomeWords(entry) }),
        element("td", {}, open)
      );
      row.dataset.testid = "history-row";
      row.dataset.id = entry.id;
      return row;
    })
  );
}

// ---- transmit ----

async function verifyList() {
  notice("");
  const view = $("transmit-check");
  view.replaceChildren(element("p", { className: "hint", textContent: t("ui.checking") }));
  try {
    const result = await api("/api/verify", {
      method: "POST",
      body: JSON.stringify({ source: $("transmit-source").value, target: $("transmit-target").value, list: $("transmit-list").value }),
    });
    const head = element(
      "tr",
      {},
      ...["ui.verify_source", "ui.verify_target", "ui.verify_exists"].map((key) => element("th", { textContent: t(key) }))
    );
    const rows = result.pairs.map((pair) => {
      const row = element(
        "tr",
        {},
        element("td", { textContent: pair.source }),
        element("td", { textContent: pair.target }),
        element("td", {
          className: pair.exists ? "ok" : "err",
          textContent: pair.exists ? t("ui.exists_yes") : `${t("ui.exists_no")} ${pair.error || ""}`,
        })
      );
      row.dataset.testid = "check-row";
      return row;
    });
    for (const line of result.invalid) {
      const row = element("tr", {}, element("td", { textContent: line.line }), element("td", { colSpan: 2, className: "err", textContent: line.error }));
      row.dataset.testid = "check-row";
      rows.push(row);
    }
    const missing = result.pairs.filter((pair) => !pair.exists).length + result.invalid.length;
    const verdict = element("p", {
      className: missing ? "summary-line err" : "summary-line ok",
      textContent: missing ? t("ui.check_some_missing", { count: missing }) : t("ui.check_all_found", { count: result.pairs.length }),
    });
    verdict.dataset.testid = "check-verdict";
    view.replaceChildren(verdict, element("table", { className: "list" }, element("thead", {}, head), element("tbody", {}, ...rows)));
  } catch (error) {
    view.replaceChildren();
    notice(error.message);
  }
}

// ---- import ----

// A package's image keys carry the source's scheme (the original wrote them so); the person
// needs the name.
const plainName = (key) => key.replace(/^https?:\/\//, "");

async function browse(path) {
  try {
    const listing = await api(`/api/browse?path=${encodeURIComponent(path)}`);
    browsing = listing.path;
    $("browser-path").textContent = listing.path;
    $("browser-up").disabled = !listing.parent;
    $("browser-up").onclick = () => listing.parent && browse(listing.parent);
    $("screen-import").querySelector(".roots").replaceChildren(
      ...listing.roots.map((root) => {
        const button = element("button", { type: "button", textContent: root.name });
        button.dataset.testid = "browser-root";
        button.onclick = () => browse(root.path);
        return button;
      })
    );
    const entries = listing.entries.map((entry) => {
      const button = element(
        "button",
        { type: "button", className: `kind-${entry.kind}` },
        element("span", { textContent: entry.name }),
        element("span", { className: "hint", textContent: entry.kind === "folder" ? "" : bytes(entry.size) })
      );
      button.onclick = () => (entry.kind === "folder" ? browse(entry.path) : chooseBundle(entry.path));
      const item = element("li", {}, button);
      item.dataset.testid = "browser-entry";
      item.dataset.kind = entry.kind;
      item.dataset.name = entry.name;
      item.dataset.path = entry.path;
      if (bundle && bundle.meta === entry.path) item.className = "selected";
      return item;
    });
    if (!entries.length) entries.push(element("li", { className: "empty", textContent: t("ui.folder_has_no_package") }));
    $("browser").replaceChildren(...entries);
  } catch (error) {
    notice(error.message);
  }
}

async function chooseBundle(path) {
  notice("");
  // What the last package showed goes at once, so it is never taken for this one's.
  bundle = null;
  importPlanned = false;
  $("import-bundle").hidden = true;
  $("import-destination").hidden = true;
  $("import-verify-result").replaceChildren();
  $("import-plan").replaceChildren();
  try {
    bundle = await api(`/api/bundle?meta=${encodeURIComponent(path)}`);
  } catch (error) {
    bundle = null;
    $("import-bundle").hidden = true;
    $("import-destination").hidden = true;
    notice(error.message);
    return;
  }
  document.querySelectorAll("#browser li").forEach((item) => item.classList.toggle("selected", item.dataset.path === path));
  showBundle(bundle);
  planImport();
}

function showBundle(chosen) {
  $("import-bundle").hidden = false;
  $("import-destination").hidden = false;
  const total = chosen.images.reduce((sum, image) => sum + (image.size || 0), 0);
  let summary = t("ui.package_holds", { file: chosen.file, count: chosen.images.length, size: bytes(total) });
  if (chosen.kind === "incremental") {
    const bases = chosen.bases.map((base) => base.name).join(", ") || t("ui.unknown_base");
    summary += " " + t("ui.package_incremental", { bases });
  } else {
    summary += " " + t("ui.package_full");
  }
  $("import-summary").textContent = summary;
  const problems = chosen.problems.map((problem) => {
    const line = element("p", { className: "problem", textContent: problem });
    line.dataset.testid = "import-problem";
    return line;
  });
  if (problems.length) problems.unshift(element("p", { className: "problem", textContent: t("ui.package_incomplete") }));
  $("import-problems").replaceChildren(...problems);
  $("import-images").replaceChildren(
    ...chosen.images.map((image) => {
      const row = element("tr", {}, element("td", { textContent: plainName(image.name) }), element("td", { className: "number", textContent: bytes(image.size) }));
      row.dataset.testid = "import-image";
      return row;
    })
  );
  importButton();
}

function importDestination() {
  return document.querySelector('input[name="import-to"]:checked').value;
}

function importButton() {
  const into = importDestination();
  $("import-target-field").hidden = into !== "registry";
  $("import-start").textContent = into === "registry" ? t("ui.upload") : t("ui.load");
  $("import-start").disabled = !bundle || bundle.problems.length > 0 || (into === "registry" && !importPlanned);
}

// What an upload would create, asked before the person can press Upload: a package that
// cannot be delivered (an increment whose base the target lacks, a target that refuses the
// login) is explained here, before anything is pushed.
async function planImport() {
  importPlanned = false;
  importButton();
  const view = $("import-plan");
  if (!bundle || bundle.problems.length || importDestination() !== "registry") {
    view.replaceChildren();
    if (bundle && importDestination() !== "registry") {
      view.replaceChildren(element("p", { className: "hint", textContent: t("ui.load_hint", { count: bundle.images.length }) }));
    }
    return;
  }
  const target = $("import-target").value;
  if (!target) {
    view.replaceChildren(element("p", { className: "problem", textContent: t("ui.no_target_yet") }));
    return;
  }
  view.replaceChildren(element("p", { className: "hint", textContent: t("ui.checking_target", { target }) }));
  const asked = bundle.meta;
  try {
    const plan = await api("/api/bundle/plan", { method: "POST", body: JSON.stringify({ meta: bundle.meta, target }) });
    if (!bundle || bundle.meta !== asked) return;
    const rows = plan.images.map((image) => {
      const row = element("tr", {}, element("td", { textContent: plainName(image.image) }), element("td", { textContent: image.target }));
      row.dataset.testid = "import-plan-row";
      return row;
    });
    for (const line of plan.invalid) {
      rows.push(element("tr", {}, element("td", { textContent: line.line }), element("td", { className: "err", textContent: line.error })));
    }
    const head = element("tr", {}, element("th", { textContent: t("ui.image") }), element("th", { textContent: t("ui.will_be_created") }));
    view.replaceChildren(
      element("p", { className: "summary-line", textContent: t("ui.plan_ready", { count: plan.images.length, target }) }),
      element("table", { className: "list" }, element("thead", {}, head), element("tbody", {}, ...rows))
    );
    importPlanned = plan.images.length > 0;
  } catch (error) {
    if (!bundle || bundle.meta !== asked) return;
    const line = element("p", { className: "problem", textContent: error.message });
    line.dataset.testid = "import-refusal";
    view.replaceChildren(line);
  }
  importButton();
}

async function verifyBundle() {
  if (!bundle) return;
  const view = $("import-verify-result");
  view.replaceChildren(element("p", { className: "hint", textContent: t("ui.verifying") }));
  try {
    const result = await api("/api/bundle/check", { method: "POST", body: JSON.stringify({ meta: bundle.meta }) });
    const verdict = element("p", {
      className: result.sound ? "summary-line ok" : "summary-line err",
      textContent: result.sound ? t("ui.package_sound") : t("ui.package_damaged", { count: result.faults.length }),
    });
    verdict.dataset.testid = "import-verdict";
    const lines = [...result.notes, ...result.faults].map((text) => element("p", { className: result.sound ? "hint" : "problem", textContent: text }));
    if (result.increment) lines.push(element("p", { className: "hint", textContent: result.increment }));
    view.replaceChildren(verdict, ...lines);
  } catch (error) {
    view.replaceChildren(element("p", { className: "problem", textContent: error.message }));
  }
}

// ---- jobs ----

function requestFor(mode) {
  const common = { mode, language, maxconn: Number($("maxconn").value) || null, retries: $("retries").value === "" ? null : Number($("retries").value) };
  switch (mode) {
    case "transmit":
      return { ...common, source: $("transmit-source").value, target: $("transmit-target").value, list: $("transmit-list").value };
    case "watch":
      return { ...common, source: $("watch-source").value, target: $("watch-target").value, list: $("watch-list").value };
    case "save": {
      const incremental = document.querySelector('input[name="save-kind"]:checked').value === "incremental";
      return {
        ...common,
        source: $("save-source").value,
        list: $("save-list").value,
        incremental_from: incremental && $("save-base").value ? [$("save-base").value] : [],
        single_file: $("save-single-file").checked,
      };
    }
    case "import": {
      const into = importDestination();
      if (into === "registry") return { ...common, mode: "upload", meta: bundle ? bundle.meta : "", target: $("import-target").value };
      return { ...common, mode: "load", meta: bundle ? bundle.meta : "", engine: into };
    }
  }
  return common;
}

const screenOf = (mode) => ({ upload: "import", load: "import" })[mode] || mode;

async function start(request) {
  notice("");
  if (request.mode === "save" && document.querySelector('input[name="save-kind"]:checked').value === "incremental" && !request.incremental_from.length) {
    notice(t("ui.pick_base"));
    return;
  }
  // The last job's panel goes at once, so nothing on the page is mistaken for this one's.
  $("job").hidden = true;
  try {
    const { id } = await api("/api/jobs", { method: "POST", body: JSON.stringify(request) });
    follow(id, request.mode, request);
  } catch (error) {
    notice(error.message);
  }
}

function busy(running) {
  for (const id of ["transmit-start", "save-start", "watch-start", "transmit-verify"]) $(id).disabled = running;
  if (running) $("import-start").disabled = true;
  else importButton();
  $("job-stop").hidden = !running;
}

// What the panel knows of a job: filled in by its events, or from its report.
function newJob(id, mode, request) {
  return { id, mode, request, report: null, exit: null, running: true, log: [], images: new Map(), counts: null, invalid: [] };
}

function follow(id, mode, request) {
  if (events) events.close();
  job = newJob(id, mode, request);
  const panel = $("job");
  $(`screen-${screenOf(mode)}`).querySelector(".job-slot").replaceChildren(panel);
  panel.hidden = false;
  $("job-log").textContent = "";
  $("job-images").replaceChildren();
  busy(true);
  renderJob();
  events = new EventSource(`/api/jobs/${id}/events?token=${encodeURIComponent(token)}`);
  events.onmessage = (message) => handle(JSON.parse(message.data));
}

function imageState(image) {
  if (!job.images.has(image)) job.images.set(image, { name: "", done: 0, total: 0, state: "running", error: "" });
  return job.images.get(image);
}

function handle(event) {
  switch (event.kind) {
    case "log":
      job.log.push(event.text);
      $("job-log").textContent += event.text + "\n";
      return;
    case "status":
      job.counts = event.counts;
      for (const image of event.images) Object.assign(imageState(image.image), { done: image.done, total: image.total });
      break;
    case "job_started":
      job.expected = event.images;
      break;
    case "invalid":
      job.invalid.push(event);
      break;
    case "image_started":
      // A save's target is a name inside the package; the person knows the image by its source.
      imageState(event.image).name = job.mode === "save" ? event.source : event.target;
      break;
    case "image_done":
      Object.assign(imageState(event.image), { state: event.unchanged ? "unchanged" : "done" });
      break;
    case "image_failed":
      Object.assign(imageState(event.image), { state: "failed", error: event.error });
      break;
    case "end":
      events.close();
      events = null;
      job.running = false;
      job.exit = event.exit;
      job.report = event.report;
      busy(false);
      loadState();
      break;
    default:
      return;
  }
  renderJob();
}

function jobFraction() {
  const expected = job.expected || (job.counts && job.counts.total) || 0;
  if (!expected) return job.running ? 0 : 1;
  let finished = 0;
  for (const image of job.images.values()) {
    if (image.state !== "running") finished += 1;
    else if (image.total) finished += Math.min(1, image.done / image.total);
  }
  return Math.min(1, finished / expected);
}

function renderJob() {
  if (!job) return;
  const title = t(`ui.mode_${job.mode}`);
  $("job-title").textContent = job.running ? t("ui.job_running_title", { job: title }) : t("ui.job_finished_title", { job: title });
  const fraction = jobFraction();
  const bar = $("job-bar");
  bar.firstElementChild.style.width = `${Math.round((job.running ? fraction : 1) * 100)}%`;
  bar.setAttribute("aria-valuenow", String(Math.round(fraction * 100)));
  const troubled = job.report ? job.report.summary.failed + job.report.summary.invalid > 0 : job.exit !== null && job.exit !== 0;
  bar.className = job.running ? "bar" : troubled ? "bar failed" : "bar done";
  $("job-figures").textContent = figures(fraction);
  renderImages();
  renderSummary();
}

function figures(fraction) {
  const c = job.counts;
  if (!c) return job.running ? t("ui.starting") : "";
  const expected = job.expected || c.total;
  const parts = [t("ui.figures_images", { done: c.succeeded + c.failed, total: expected }), t("ui.figures_bytes", { bytes: bytes(c.bytes) })];
  if (job.running) {
    parts.push(t("ui.figures_speed", { speed: bytes(c.speed) }));
    if (fraction > 0.02 && c.elapsed_seconds > 1) parts.push(t("ui.figures_left", { left: duration((c.elapsed_seconds * (1 - fraction)) / fraction) }));
  } else {
    parts.push(t("ui.figures_took", { took: duration(c.elapsed_seconds) }));
  }
  return parts.join(" · ");
}

function renderImages() {
  const rows = [];
  for (const [id, image] of job.images) {
    const share = image.state === "running" ? (image.total ? Math.min(1, image.done / image.total) : 0) : 1;
    const words = {
      running: image.total ? t("ui.image_moving", { done: bytes(image.done), total: bytes(image.total) }) : t("ui.image_starting"),
      done: t("ui.succeeded"),
      unchanged: t("ui.unchanged"),
      failed: `${t("ui.failed")}: ${image.error}`,
    }[image.state];
    const row = element(
      "tr",
      { className: image.state === "failed" ? "failed" : image.state === "running" ? "" : "done" },
      element("td", { className: "name", textContent: image.name || `#${id}` }),
      element("td", {}, element("div", { className: "mini" }, element("div", { style: `width:${Math.round(share * 100)}%` }))),
      element("td", { className: `state ${image.state === "failed" ? "err" : image.state === "running" ? "" : "ok"}`, textContent: words })
    );
    row.dataset.testid = "image-row";
    row.dataset.state = image.state;
    rows.push(row);
  }
  for (const line of job.invalid) {
    const row = element("tr", { className: "failed" }, element("td", { className: "name", textContent: line.line }), element("td"), element("td", { className: "state err", textContent: `${t("ui.invalid")}: ${line.error}` }));
    row.dataset.testid = "image-row";
    row.dataset.state = "invalid";
    rows.push(row);
  }
  $("job-images").replaceChildren(...rows);
}

// The end of a job in plain words: what was delivered, what was not and why, what to do next.
function renderSummary() {
  const box = $("job-summary");
  const after = $("job-after");
  if (job.running) {
    box.hidden = true;
    after.hidden = true;
    return;
  }
  const report = job.report;
  const lines = [];
  let troubled = false;
  if (!report) {
    troubled = job.exit !== 0 && job.mode !== "watch";
    if (job.mode === "watch") lines.push(t("ui.watch_ended"));
    else {
      lines.push(t("ui.job_refused"));
      const said = job.log.filter((line) => line.trim()).slice(-12);
      lines.push(...said);
    }
  } else {
    const s = report.summary;
    const failed = report.images.filter((image) => image.status === "failed");
    troubled = failed.length + report.invalid.length > 0;
    if (s.cancelled) lines.push(t("ui.summary_stopped", { done: s.succeeded, total: s.total }));
    else if (!troubled) {
      const key = { transmit: "ui.summary_copied", upload: "ui.summary_copied", save: "ui.summary_saved", load: "ui.summary_loaded" }[job.mode] || "ui.summary_copied";
      lines.push(t(key, { count: s.succeeded, target: report.target, path: report.target }));
    } else {
      lines.push(t("ui.summary_troubled", { done: s.succeeded, total: s.total }));
      for (const image of failed) lines.push(`• ${image.line}: ${image.error}`);
      for (const line of report.invalid) lines.push(`• ${line.line}: ${line.error}`);
      if (failed.length) lines.push(t("ui.next_retry"));
      if (report.invalid.length) lines.push(t("ui.next_fix_lines"));
      if (job.mode === "save" && s.succeeded) lines.push(t("ui.summary_saved_partly", { path: report.target }));
    }
  }
  box.textContent = lines.join("\n");
  box.className = troubled ? "summary troubled" : "summary";
  box.hidden = false;
  after.hidden = false;
  const failedLines = report ? report.images.filter((image) => image.status === "failed").map((image) => image.line) : [];
  $("job-retry").hidden = !failedLines.length || !job.request;
  $("job-retry").onclick = () => {
    const request = { ...job.request, language };
    if (request.mode === "upload" || request.mode === "load") request.images = failedLines;
    else request.list = failedLines.join("\n");
    start(request);
  };
  const link = $("job-report");
  link.hidden = !report;
  link.href = `/api/jobs/${job.id}/report?token=${encodeURIComponent(token)}`;
  link.setAttribute("download", `image-transmit-job-${job.id}.json`);
}

async function openJob(id) {
  const entry = await api(`/api/jobs/${id}`);
  if (entry.running) {
    showTask(screenOf(entry.mode));
    follow(id, entry.mode, null);
    return;
  }
  if (events) events.close();
  job = { ...newJob(id, entry.mode, null), report: entry.outcome.report, exit: entry.outcome.exit, running: false };
  if (job.report) {
    job.counts = { succeeded: job.report.summary.succeeded, failed: job.report.summary.failed, total: job.report.summary.total, bytes: job.report.bytes_transferred, elapsed_seconds: job.report.elapsed_seconds, speed: 0 };
    job.report.images.forEach((image, index) =>
      job.images.set(index + 1, { name: image.target || image.line, done: 1, total: 1, state: image.status === "failed" ? "failed" : image.status === "unchanged" ? "unchanged" : "done", error: image.error || "" })
    );
  }
  $("screen-history").querySelector(".job-slot").replaceChildren($("job"));
  $("job").hidden = false;
  $("job-log").textContent = "";
  busy(false);
  renderJob();
}

// ---- settings ----

function registryForm() {
  return {
    side: document.querySelector('input[name="reg-side"]:checked').value,
    name: $("reg-name").value,
    registry: $("reg-address").value,
    user: $("reg-user").value,
    password: $("reg-password").value,
    repository: $("reg-repository").value,
    skiptlsverify: $("reg-skiptls").checked,
  };
}

async function testForm() {
  const result = $("reg-result");
  result.textContent = t("ui.testing");
  result.className = "";
  try {
    const answer = await api("/api/registries/test", { method: "POST", body: JSON.stringify({ registry: registryForm() }) });
    result.textContent = answer.message;
    result.className = answer.ok ? "ok" : "err";
  } catch (error) {
    result.textContent = error.message;
    result.className = "err";
  }
}

async function addRegistry(event) {
  event.preventDefault();
  const result = $("reg-result");
  try {
    const added = await api("/api/registries", { method: "POST", body: JSON.stringify({ ...registryForm(), keep: $("reg-keep").checked }) });
    const name = $("reg-name").value;
    $("registry-form").reset();
    result.textContent = added.kept ? t("ui.registry_kept", { name, path: added.path }) : t("ui.registry_added", { name });
    result.className = "ok";
    await loadState();
  } catch (error) {
    result.textContent = error.message;
    result.className = "err";
  }
}

// ---- wiring ----

function wire() {
  document.querySelectorAll("[data-task]").forEach((tab) => (tab.onclick = () => showTask(tab.dataset.task)));
  $("transmit-verify").onclick = verifyList;
  $("transmit-start").onclick = () => start(requestFor("transmit"));
  $("save-start").onclick = () => start(requestFor("save"));
  $("watch-start").onclick = () => start(requestFor("watch"));
  $("import-start").onclick = () => start(requestFor("import"));
  $("import-verify").onclick = verifyBundle;
  // A folder no root leads to (a network share such as \\server\share): typed or pasted.
  $("browser-go").onsubmit = (event) => {
    event.preventDefault();
    const path = $("browser-go-path").value.trim();
    if (!path) return;
    if (path.endsWith("_meta.yaml")) chooseBundle(path);
    else browse(path);
  };
  $("import-target").onchange = planImport;
  document.querySelectorAll('input[name="import-to"]').forEach((radio) => (radio.onchange = planImport));
  document.querySelectorAll('input[name="save-kind"]').forEach(
    (radio) => (radio.onchange = () => ($("save-base-field").hidden = document.querySelector('input[name="save-kind"]:checked').value !== "incremental"))
  );
  $("job-stop").onclick = () => job && job.running && api(`/api/jobs/${job.id}/stop`, { method: "POST" }).catch((e) => notice(e.message));
  $("lang").onchange = () => setLanguage($("lang").value);
  $("registry-form").onsubmit = addRegistry;
  $("reg-test").onclick = testForm;
  // As in the original GUI, a list keeps one image per line whatever was pasted.
  for (const id of ["transmit-list", "save-list", "watch-list"]) $(id).onchange = () => ($(id).value = $(id).value.replace(/\r\n?/g, "\n"));
  window.onhashchange = () => showTask(location.hash.slice(1));
}

async function main() {
  wire();
  await loadState();
  const saved = localStorage.getItem("image-transmit-language");
  const browser = (navigator.language || "").toLowerCase().startsWith("zh") ? "zh-CN" : "en";
  await setLanguage(saved || state.configured_language || browser);
  $("save-single-file").checked = state.singlefile;
  // A first start with nothing set up leads to the settings, not to empty pickers.
  const first = state.registries.length === 0 ? "settings" : location.hash.slice(1) || "transmit";
  showTask(first);
  const running = state.jobs.find((entry) => entry.running);
  if (running) {
    showTask(screenOf(running.mode));
    follow(running.id, running.mode, null);
  }
}

main().catch((error) => notice(error.message));
