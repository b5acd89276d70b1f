// What every Studio page shares.  Pages work without scripts; this only adds conveniences.
"use strict";

// A failed form's error is shown beside the form (see form_errors.py): bring it into view and
// give it the keyboard focus, so a keyboard or screen-reader user lands where the problem is.
document.addEventListener("DOMContentLoaded", () => {
  const error = document.querySelector(".form-error");
  if (error) {
    error.setAttribute("tabindex", "-1");
    error.scrollIntoView({ block: "center" });
    error.focus();
  }
});
