// Hostmaster console: live refresh of the parts marked data-live, tick labels, "Add a row".
"use strict";

function refreshEvery(region) {
  const seconds = Number(region.dataset.live) || 5;
  const toggle = document.querySelector("[data-live-toggle]");
  async function refresh() {
    // Not while the user is in the region: a refresh would take away their focus or close what they opened.
    const busy = region.contains(document.activeElement) || region.querySelector("details[open]");
    if (region.hasAttribute("data-live-done") || (toggle && !toggle.checked) || document.hidden || busy) {
      return schedule();
    }
    try {
      const answer = await fetch(window.location.href, {
        credentials: "same-origin",
        headers: { "Accept": "text/html", "X-Console-Refresh": "1" },
      });
      if (answer.redirected || !answer.ok) return schedule();  // signed out, or a passing error: try later
      const page = new DOMParser().parseFromString(await answer.text(), "text/html");
      const fresh = page.getElementById(region.id);
      if (fresh && fresh.innerHTML !== region.innerHTML) {
        region.innerHTML = fresh.innerHTML;
        const note = document.querySelector("[data-live-note]");
        if (note) note.textContent = "Updated at " + new Date().toLocaleTimeString();
        if (fresh.hasAttribute("data-live-done")) region.setAttribute("data-live-done", "");
        placeTicks(region);
      }
    } catch (error) { /* the network blinked: the next round tries again */ }
    schedule();
  }
  function schedule() { window.setTimeout(refresh, seconds * 1000); }
  schedule();
}

function placeTicks(root) {
  for (const tick of root.querySelectorAll(".ticks span[data-x]")) tick.style.left = tick.dataset.x + "%";
}

function rowAdder(button) {
  const body = document.querySelector("[data-rows]");
  button.hidden = false;
  button.addEventListener("click", () => {
    const rows = body.querySelectorAll("[data-row]");
    const row = rows[rows.length - 1].cloneNode(true);
    const number = rows.length + 1;
    row.querySelector("[data-row-number]").textContent = number;
    for (const field of row.querySelectorAll("input, textarea, select")) {
      const base = field.id.replace(/-\d+$/, "");
      field.id = base + "-" + number;
      if (field.tagName === "SELECT") field.selectedIndex = 0; else field.value = "";
    }
    for (const label of row.querySelectorAll("label")) {
      label.htmlFor = label.htmlFor.replace(/-\d+$/, "-" + number);
      label.textContent = label.textContent.replace(/\d+$/, String(number));
    }
    body.appendChild(row);
    row.querySelector("input").focus();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-live]").forEach(refreshEvery);
  placeTicks(document);
  const adder = document.querySelector("[data-add-row]");
  if (adder) rowAdder(adder);
});
