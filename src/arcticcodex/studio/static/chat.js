// The chat, streamed: the ask form is posted to /chat/stream and the model's reply is shown as it is
// written.  Without this script the same form posts to /chat and the page reloads with the answer.
//
// Everything a model or a document wrote is put on the page as text (textContent), never as HTML; the
// links made here point only at the Studio's own chunk pages.
"use strict";

(() => {
  const form = document.getElementById("ask");
  if (!form || !window.fetch || !window.ReadableStream || !window.TextDecoder) {
    return; // the form posts as usual
  }
  const conversation = document.getElementById("conversation");
  const status = document.getElementById("chat-status");
  const errorSlot = document.getElementById("ask-error");
  const button = document.getElementById("ask-button");
  const template = document.getElementById("answer-template");
  const token = () => document.querySelector('meta[name="csrf-token"]').getAttribute("content");

  function showError(message) {
    errorSlot.replaceChildren();
    const paragraph = document.createElement("p");
    paragraph.className = "form-error";
    paragraph.setAttribute("role", "alert");
    paragraph.textContent = message;
    errorSlot.appendChild(paragraph);
  }

  function userCard(question) {
    const card = document.createElement("div");
    card.className = "card message user";
    const who = document.createElement("strong");
    who.textContent = "You";
    const text = document.createElement("p");
    text.className = "text";
    text.textContent = question;
    card.append(who, " ", text);
    conversation.appendChild(card);
    return card;
  }

  // The answer's card, from the page's template; it joins the page with its first text.
  function answerCard() {
    const card = template.content.firstElementChild.cloneNode(true);
    const text = card.querySelector(".text");
    let shown = false;
    return {
      card,
      add(piece) {
        text.textContent += piece;
        if (!shown) {
          conversation.appendChild(card);
          shown = true;
        }
      },
      finish(done) {
        text.textContent = done.text; // the stored answer: markers with no evidence are gone
        card.id = done.message;
        const cite = card.querySelector(".cite");
        const source = card.querySelector('select[name="source"]');
        for (const citation of done.citations) {
          const link = document.createElement("a");
          link.className = "citation";
          link.href = "/vault/chunks/" + encodeURIComponent(citation.chunk_id).replace(/%3A/g, ":"); // doc-…:N
          link.textContent = "[" + citation.number + "] " + citation.chunk_id;
          cite.append(link, " ");
          const option = document.createElement("option");
          option.value = citation.chunk_id;
          option.textContent = "[" + citation.number + "] " + citation.chunk_id;
          source.appendChild(option);
        }
        if (!done.citations.length) {
          cite.remove();
          source.closest(".source").replaceWith(hidden("source", ""));
        }
        const propose = card.querySelector("form");
        propose.closest("details").hidden = false; // only a stored answer can be proposed from
        propose.action = "/chat/messages/" + encodeURIComponent(done.message) + "/propose";
        propose.querySelector('input[name="conversation"]').value = done.conversation;
        propose.querySelector('input[name="model"]').value = form.elements.model.value;
        if (form.elements.tools && form.elements.tools.checked) {
          propose.appendChild(hidden("tools", "on"));
        }
        for (const label of card.querySelectorAll("label[data-for]")) {
          const name = label.dataset.for;
          const id = name + "-" + done.message;
          card.querySelector('[name="' + name + '"]').id = id;
          label.htmlFor = id;
          label.removeAttribute("data-for");
        }
        if (!shown) {
          conversation.appendChild(card);
          shown = true;
        }
      },
    };
  }

  function hidden(name, value) {
    const input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    input.value = value;
    return input;
  }

  // Server-sent events from a fetch body: "event: KIND\ndata: JSON\n\n" each.
  async function* events(response) {
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        return;
      }
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let kind = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) {
            kind = line.slice(6).trim();
          } else if (line.startsWith("data:")) {
            data.push(line.slice(5).trimStart());
          }
        }
        yield { kind, data: JSON.parse(data.join("\n")) };
      }
    }
  }

  async function ask(question) {
    const body = new URLSearchParams(new FormData(form));
    const response = await fetch(form.dataset.stream, {
      method: "POST",
      body,
      headers: { "X-CSRF-Token": token() },
      credentials: "same-origin",
    });
    const type = response.headers.get("content-type") || "";
    if (!type.startsWith("text/event-stream")) {
      throw new Error("The Studio refused the question (HTTP " + response.status + "); reload the page and ask again.");
    }
    const asked = userCard(question);
    const answer = answerCard();
    for await (const { kind, data } of events(response)) {
      if (kind === "token") {
        answer.add(data.text);
        status.textContent = "The answer is being written…";
      } else if (kind === "done") {
        answer.finish(data);
        form.elements.conversation.value = data.conversation;
        history.replaceState(null, "", data.address + "#" + data.message);
        status.textContent = "Answered by " + data.answered_by + ".";
        if (data.proposed) {
          status.textContent += " The model proposed " + data.proposed + " fact(s); they wait in Review.";
        }
        return;
      } else if (kind === "error") {
        asked.remove(); // nothing was stored: the page shows the conversation as it is
        answer.card.remove();
        throw new Error(data.message);
      }
    }
    asked.remove();
    answer.card.remove();
    throw new Error("The answer broke off before it was done; nothing was stored. Ask again.");
  }

  form.addEventListener("submit", async (submitted) => {
    submitted.preventDefault();
    const question = form.elements.question.value;
    errorSlot.replaceChildren();
    button.disabled = true;
    status.textContent = "Asking " + form.elements.model.selectedOptions[0].textContent + "…";
    try {
      await ask(question);
      form.elements.question.value = "";
    } catch (error) {
      status.textContent = "";
      showError(error.message);
    } finally {
      button.disabled = false;
      form.elements.question.focus();
    }
  });
})();
