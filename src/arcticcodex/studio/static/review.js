// Keyboard shortcuts of the review queue (/review).  The page works without them: every action is a
// form.  j / k move between pairs, a approves the current one, r focuses its reason field (Enter
// rejects), e opens its edit form, ? shows the list of shortcuts.  No shortcut fires while a field
// has the keyboard (typing a reason "a" must not approve), nor with a modifier key held.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const pairs = Array.from(document.querySelectorAll(".card.pair"));
  const shortcuts = document.getElementById("shortcuts");
  let current = -1;

  function select(index) {
    if (!pairs.length) return;
    current = Math.max(0, Math.min(pairs.length - 1, index));
    pairs.forEach((pair, at) => pair.classList.toggle("current", at === current));
    const pair = pairs[current];
    pair.focus({ preventScroll: true });
    pair.scrollIntoView({ block: "start" });
  }

  function here() {
    if (current < 0) select(0);
    return pairs[current] || null;
  }

  function typing(target) {
    if (!(target instanceof Element)) return false;
    return target.closest("input, textarea, select, [contenteditable=''], [contenteditable='true']") !== null;
  }

  // A pair clicked or tabbed into becomes the current one, so the keys act on what the user sees.
  pairs.forEach((pair, at) => {
    pair.addEventListener("focusin", () => {
      current = at;
      pairs.forEach((other, index) => other.classList.toggle("current", index === at));
    });
  });

  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && typing(event.target)) {
      event.target.blur();
      const pair = event.target.closest(".card.pair");
      if (pair) pair.focus({ preventScroll: true });
      return;
    }
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    let pair;
    switch (event.key) {
      case "j":
        select(current + 1);
        break;
      case "k":
        select(current - 1);
        break;
      case "a": {
        pair = here();
        if (!pair) return;
        const approve = pair.querySelector("form[action$='/approve']");
        if (!approve) return;
        approve.requestSubmit();
        break;
      }
      case "r": {
        pair = here();
        if (!pair) return;
        const reason = pair.querySelector("form[action$='/reject'] input[name=reason]");
        if (!reason) return;
        reason.focus();
        break;
      }
      case "e": {
        pair = here();
        if (!pair) return;
        const edit = pair.querySelector("details.edit");
        if (!edit) return;
        edit.open = true;
        const answer = edit.querySelector("textarea[name=completion]");
        if (answer) answer.focus();
        break;
      }
      case "?":
        if (!shortcuts) return;
        shortcuts.open = !shortcuts.open;
        if (shortcuts.open) shortcuts.scrollIntoView({ block: "nearest" });
        break;
      default:
        return;
    }
    event.preventDefault();
  });
});
