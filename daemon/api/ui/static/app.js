// The viewer's behaviour: live timeline (Server-Sent Events), paging, search without a page
// load, and changes (POST with the page's CSRF token). No inline script: the CSP forbids it.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf"]').content;

async function post(url, body) {
  const response = await fetch(url, {
    method: "POST", credentials: "same-origin",
    headers: {"x-memlane-csrf": csrf(), "content-type": "application/json"},
    body: body || "{}",
  });
  const answer = await response.json();
  document.getElementById("answer").textContent = JSON.stringify(answer, null, 2);
  return response.ok ? answer : null;
}

async function fetchRows(query) {
  const response = await fetch("/ui/rows?" + query, {credentials: "same-origin"});
  const holder = document.createElement("ol");
  holder.innerHTML = await response.text();
  return Array.from(holder.children);
}

function topId(list) {
  const first = list.querySelector("li.memory");
  return first ? Number(first.dataset.id) : 0;
}

function liveTimeline(list) {
  const filters = list.dataset.query;
  const state = document.getElementById("live-state");
  const source = new EventSource("/ui/live");
  source.onopen = () => { state.textContent = "live"; };
  source.onerror = () => { state.textContent = "live: reconnecting"; };
  source.onmessage = async (message) => {
    const change = JSON.parse(message.data);
    for (const id of change.gone) {
      list.querySelector(`li.memory[data-id="${id}"]`)?.remove();
    }
    if (change.newest && change.newest > topId(list)) {
      const rows = await fetchRows(`${filters}&after=${topId(list)}`);
      for (const row of rows.filter((r) => r.matches("li.memory")).reverse()) {
        if (!list.querySelector(`li.memory[data-id="${row.dataset.id}"]`)) {
          row.classList.add("fresh");
          list.prepend(row);
        }
      }
    }
  };
  list.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-older]");
    if (!button) return;
    const rows = await fetchRows(`${filters}&before=${button.dataset.older}`);
    button.closest("li").replaceWith(...rows);
  });
}

function searchInPlace(form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const query = new URLSearchParams(new FormData(form));
    performance.mark("search-start");
    const response = await fetch("/ui/search?fragment=1&" + query, {credentials: "same-origin"});
    document.getElementById("results").innerHTML = await response.text();
    performance.mark("search-done");
    performance.measure("search", "search-start", "search-done");
    history.replaceState(null, "", "/ui/search?" + query);
  });
}

document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  if (button.dataset.confirm && !confirm(button.dataset.confirm)) return;
  button.disabled = true;
  const ok = (await post(button.dataset.action, button.dataset.body)) !== null;
  button.disabled = false;
  if (ok && button.dataset.then === "reload") location.reload();
});

function editInPlace(form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = new FormData(form).get("text");
    const answer = await post(form.dataset.action, JSON.stringify({text}));
    if (answer) location.href = "/ui/memories/" + answer.id;
  });
}

function acceptEdited(form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = new FormData(form).get("text");
    const digest = form.dataset.digest;
    const body = JSON.stringify(digest ? {digest, text} : {text});
    if (await post(form.dataset.action, body)) location.reload();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const list = document.getElementById("timeline");
  if (list) liveTimeline(list);
  const form = document.getElementById("search");
  if (form) searchInPlace(form);
  const editor = document.getElementById("edit");
  if (editor) editInPlace(editor);
  document.querySelectorAll("form.accept-edited").forEach(acceptEdited);
});
