// fmhub web UI: small progressive enhancements. Every page works without this file.
"use strict";

function copyText(text, button) {
  const done = () => { const old = button.textContent; button.textContent = "copied"; setTimeout(() => { button.textContent = old; }, 1200); };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, () => {});
  } else {
    const area = document.createElement("textarea");
    area.value = text; document.body.appendChild(area); area.select();
    try { document.execCommand("copy"); done(); } finally { area.remove(); }
  }
}

// Loads the error browser for a cell or page without reloading the report card (charts keep their state).
async function loadErrors(url) {
  const target = document.querySelector("[data-role=errors]");
  if (!target) { window.location.href = url; return; }
  const partial = new URL(url, window.location.href);
  partial.searchParams.set("partial", "errors");
  const response = await fetch(partial.toString(), { credentials: "same-origin", headers: { Accept: "text/html" } });
  if (!response.ok) { window.location.href = url; return; }
  const holder = document.createElement("div");
  holder.innerHTML = await response.text();  // our own server-rendered, escaped partial
  const fresh = holder.querySelector("[data-role=errors]");
  if (fresh) { target.replaceWith(fresh); }
  const shown = new URL(url, window.location.href);
  shown.searchParams.delete("partial");
  history.replaceState(null, "", shown.pathname + shown.search + "#errors");
  document.getElementById("errors")?.scrollIntoView({ behavior: "smooth", block: "start" });
}
window.fmhubLoadErrors = loadErrors;

document.addEventListener("click", (event) => {
  const copy = event.target.closest("[data-copy], [data-copy-from]");
  if (copy) {
    const text = copy.dataset.copy ?? document.getElementById(copy.dataset.copyFrom)?.textContent ?? "";
    copyText(text.trim(), copy);
    return;
  }
  const errorsLink = event.target.closest("a[data-errors-link]");
  if (errorsLink && document.querySelector("[data-role=errors]")) {
    event.preventDefault();
    loadErrors(errorsLink.href);
    return;
  }
  for (const menu of document.querySelectorAll("details.menu[open], details.rev-picker[open]")) {
    if (!menu.contains(event.target)) { menu.removeAttribute("open"); }
  }
});

document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-compare-base]");
  if (!form) { return; }
  const a = form.querySelector("input[name=a]:checked"), b = form.querySelector("input[name=b]:checked");
  if (a && b) {
    event.preventDefault();
    window.location.href = form.dataset.compareBase + a.value + "..." + b.value;
  }
});
