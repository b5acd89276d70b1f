// A run's page follows the run live: the server's event stream (/runs/RUN/events) updates the counts,
// cost, rate, time left, note and failures in place (an aria-live region), with no reload.  Without
// scripts the page refreshes itself instead (a <noscript> refresh), so this only makes it smoother.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const run = document.getElementById("run");
  if (!run || run.dataset.status !== "running" || typeof EventSource === "undefined") {
    return;
  }
  const events = new EventSource(`/runs/${encodeURIComponent(run.dataset.run)}/events`);

  const show = (snapshot) => {
    for (const element of run.querySelectorAll("[data-field]")) {
      const name = element.dataset.field;
      if (!(name in snapshot)) {
        continue;
      }
      const text = String(snapshot[name]);
      if (element.textContent !== text) {
        element.textContent = text;
      }
      if (name === "note") {
        element.hidden = text === "";
      }
      if (name === "status") {
        element.className = `status-${text}`;
      }
    }
    const failures = document.getElementById("failures");
    if (failures && Array.isArray(snapshot.failures) && snapshot.failures.length) {
      const items = snapshot.failures.map((failure) => {
        const item = document.createElement("li");
        item.textContent = `task ${failure.position}: ${failure.reason}`;  // text, never markup
        return item;
      });
      failures.replaceChildren(...items);
    }
  };

  events.addEventListener("progress", (event) => show(JSON.parse(event.data)));
  events.addEventListener("end", (event) => {
    events.close();
    const snapshot = JSON.parse(event.data);
    show(snapshot);
    const stop = document.querySelector("#stop button");
    if (stop) {
      stop.disabled = true;  // nothing left to stop; the reload brings Resume or Publish where they apply
    }
    const following = document.getElementById("following");
    if (following) {
      following.textContent = "(the run has ended; reloading for its actions)";
    }
    // the run stopped or finished: the page's actions (Resume, Publish) change, so it is loaded again
    if (snapshot.status !== "running") {
      window.setTimeout(() => window.location.reload(), 800);
    }
  });
});
