/* ctxbase console: the few behaviours htmx does not cover. No inline script anywhere
   (the Content-Security-Policy forbids it): everything hangs off data- attributes. */
(function () {
  "use strict";

  /* Forms and buttons that ask before acting: data-confirm="Delete this memory?" */
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var message = form.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  /* Copy buttons: data-copy="#element-id" copies that element's text. */
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (source && navigator.clipboard) {
      navigator.clipboard.writeText(source.textContent.trim()).then(function () {
        button.textContent = "Copied";
      });
    }
  });

  function text(tag, value, className) {
    var element = document.createElement(tag);
    element.textContent = value;
    if (className) element.className = className;
    return element;
  }

  /* Live tail of a project's events: <ol data-tail="stream-url" data-after="N">.
     Each event arrives as JSON and is written with textContent only. */
  function startTail(list) {
    var status = document.getElementById(list.getAttribute("data-status"));
    var after = list.getAttribute("data-after") || "0";
    var limit = 500;
    var source = new EventSource(list.getAttribute("data-tail") + "?after=" + encodeURIComponent(after));
    source.addEventListener("open", function () {
      list.setAttribute("data-live", "true");
      if (status) status.textContent = "Live: new events appear at the top as they are appended.";
    });
    source.addEventListener("error", function () {
      list.setAttribute("data-live", "false");
      if (status) status.textContent = "Reconnecting…";
    });
    source.addEventListener("event", function (message) {
      var event = JSON.parse(message.data);
      var item = document.createElement("li");
      item.className = "fresh";
      item.setAttribute("data-sequence", event.sequence);
      item.appendChild(text("span", "#" + event.sequence, "mono"));
      var what = document.createElement("span");
      what.appendChild(text("strong", event.event_type));
      what.appendChild(document.createElement("br"));
      what.appendChild(text("span", event.created_at.replace("T", " ").slice(0, 19), "hint"));
      item.appendChild(what);
      item.appendChild(text("pre", JSON.stringify(event.data, null, 2)));
      list.insertBefore(item, list.firstChild);
      var empty = document.getElementById("tail-empty");
      if (empty) empty.remove();
      while (list.children.length > limit) list.removeChild(list.lastChild);
    });
  }

  /* Job progress: <div data-job-stream="url">; the server sends the panel's HTML
     (rendered and escaped by its templates) as each `panel` event, then `end`. */
  function startJob(panel) {
    var source = new EventSource(panel.getAttribute("data-job-stream"));
    source.addEventListener("panel", function (message) {
      panel.innerHTML = message.data;
    });
    source.addEventListener("end", function () {
      source.close();
      panel.setAttribute("data-finished", "true");
    });
  }

  function start(root) {
    root.querySelectorAll("[data-tail]").forEach(startTail);
    root.querySelectorAll("[data-job-stream]").forEach(startJob);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { start(document); });
  } else {
    start(document);
  }
})();
