// kepubot console: live preview on the compose page and confirmations. No framework.
"use strict";
(function () {
  var token = document.querySelector('meta[name="csrf-token"]');
  token = token ? token.getAttribute("content") : "";

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  var back = document.querySelector("[data-back]");
  if (back && window.history.length > 1) {
    back.addEventListener("click", function (event) {
      event.preventDefault();
      window.history.back();
    });
  }

  // bulk work: "tick all" ticks every row that joins the bulk form
  document.querySelectorAll("[data-bulk-all]").forEach(function (all) {
    all.addEventListener("change", function () {
      document.querySelectorAll('input[name="ids"][form="bulk-form"]').forEach(function (box) {
        box.checked = all.checked;
      });
    });
  });

  var form = document.getElementById("compose-form");
  var target = document.getElementById("live-preview");
  if (!form || !target) {
    return;
  }
  var timer = null;
  var sequence = 0;

  function refresh() {
    var data = new FormData();
    ["title", "body", "summary", "link", "tags", "post_id"].forEach(function (name) {
      var field = form.elements[name];
      if (field) {
        data.append(name, field.value);
      }
    });
    form.querySelectorAll('input[name="channels"]:checked').forEach(function (box) {
      data.append("channels", box.value);
    });
    // each channel's own version: fields next to its preview, in the form by form="..."
    Array.prototype.forEach.call(form.elements, function (field) {
      if (/^variant/.test(field.name)) {
        data.append(field.name, field.value);
      }
    });
    var mine = ++sequence;
    fetch(form.getAttribute("data-preview"), {
      method: "POST",
      body: data,
      headers: { "X-CSRF-Token": token },
      credentials: "same-origin",
    })
      .then(function (response) {
        return response.text().then(function (html) {
          return { ok: response.ok, html: html };
        });
      })
      .then(function (result) {
        if (mine !== sequence) {
          return; // an older answer arriving late
        }
        if (result.ok) {
          // what is typed in a channel's own version stays as typed (the answer may be a
          // keystroke behind), and so does the cursor
          var typed = {};
          var focused = document.activeElement;
          var focusName = focused && target.contains(focused) ? focused.name : null;
          var selection = focusName ? [focused.selectionStart, focused.selectionEnd] : null;
          target.querySelectorAll("[name^='variant_']").forEach(function (field) {
            typed[field.name] = field.value;
          });
          var open = {};
          target.querySelectorAll(".channel-preview").forEach(function (box) {
            var details = box.querySelector("details.variant");
            if (details) {
              open[box.getAttribute("data-channel")] = details.open;
            }
          });
          // the server renders this fragment: Markdown through the sanitizer, text escaped
          target.innerHTML = result.html;
          target.querySelectorAll("[name^='variant_']").forEach(function (field) {
            if (Object.prototype.hasOwnProperty.call(typed, field.name)) {
              field.value = typed[field.name];
            }
          });
          target.querySelectorAll(".channel-preview").forEach(function (box) {
            var details = box.querySelector("details.variant");
            var name = box.getAttribute("data-channel");
            if (details && Object.prototype.hasOwnProperty.call(open, name)) {
              details.open = open[name];
            }
          });
          if (focusName) {
            var again = target.querySelector('[name="' + focusName.replace(/"/g, '\\"') + '"]');
            if (again) {
              again.focus();
              if (selection && again.setSelectionRange) {
                again.setSelectionRange(selection[0], selection[1]);
              }
            }
          }
        } else {
          target.textContent = "preview unavailable (" + result.html.length + ")";
        }
        target.setAttribute("data-ready", String(mine));
      });
  }

  function later() {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, 300);
  }

  form.addEventListener("input", later);
  form.addEventListener("change", later);
  target.addEventListener("input", later); // a channel's own version, next to its preview
  refresh();
})();
