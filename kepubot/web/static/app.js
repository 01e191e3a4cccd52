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
  var body = form.elements.body;

  // --- images in the body (docs/architecture.md §15.2) ---------------------------------------
  function insertAtCursor(text) {
    var start = body.selectionStart;
    var end = body.selectionEnd;
    var before = body.value.slice(0, start);
    var after = body.value.slice(end);
    var lead = before && !/\n\n$/.test(before) ? (/\n$/.test(before) ? "\n" : "\n\n") : "";
    var tail = after && !/^\n/.test(after) ? "\n\n" : "";
    body.value = before + lead + text + tail + after;
    var caret = (before + lead + text).length;
    body.focus();
    body.setSelectionRange(caret, caret);
    body.dispatchEvent(new Event("input", { bubbles: true }));
  }

  function markdownFor(name) {
    return "![" + name.replace(/\.[^.]*$/, "").replace(/[\[\]]/g, "") + "](" + name + ")";
  }

  function thumb(holder, url, name, label) {
    var box = document.createElement("span");
    box.className = "thumb";
    var img = document.createElement("img");
    img.src = url;
    img.alt = name;
    img.title = name;
    box.appendChild(img);
    var button = document.createElement("button");
    button.type = "button";
    button.className = "insert-image";
    button.textContent = label;
    button.setAttribute("data-markdown", markdownFor(name));
    box.appendChild(button);
    holder.appendChild(box);
    return box;
  }

  form.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest(".insert-image") : null;
    if (button && !button.disabled) {
      event.preventDefault();
      insertAtCursor(button.getAttribute("data-markdown"));
    }
  });

  // chosen files preview at once, from object URLs, before the form is saved
  var pendingUrls = {}; // chosen file name -> its object URL, for the live preview
  var chosen = form.querySelector('input[type="file"][name="images"]');
  var chosenBox = document.getElementById("new-images");
  var label = chosen ? chosen.getAttribute("data-insert-label") : "";
  if (chosen && chosenBox) {
    chosen.addEventListener("change", function () {
      chosenBox.querySelectorAll("img").forEach(function (img) {
        URL.revokeObjectURL(img.src);
      });
      chosenBox.textContent = "";
      pendingUrls = {};
      Array.prototype.forEach.call(chosen.files || [], function (file) {
        var address = URL.createObjectURL(file);
        pendingUrls[file.name] = address;
        thumb(chosenBox, address, file.name, label);
      });
    });
  }

  // dropped or pasted images upload at once and insert themselves at the cursor
  var uploadedBox = document.getElementById("uploaded-images");
  function upload(file) {
    var box = thumb(uploadedBox, URL.createObjectURL(file), file.name || "image.png", label);
    var button = box.querySelector("button");
    button.disabled = true;
    var data = new FormData();
    data.append("file", file, file.name || "image.png");
    fetch(body.getAttribute("data-upload"), {
      method: "POST",
      body: data,
      headers: { "X-CSRF-Token": token },
      credentials: "same-origin",
    })
      .then(function (response) {
        return response.json().then(function (answer) {
          return { ok: response.ok, answer: answer };
        });
      })
      .then(function (result) {
        if (!result.ok) {
          box.className = "thumb failed";
          button.remove();
          var error = document.createElement("span");
          error.className = "err";
          error.setAttribute("role", "alert");
          error.textContent = result.answer.error || "upload failed";
          box.appendChild(error);
          return;
        }
        var kept = document.createElement("input");
        kept.type = "hidden";
        kept.name = "uploaded";
        kept.value = result.answer.path + "|" + result.answer.name;
        box.appendChild(kept);
        box.setAttribute("data-uploaded", result.answer.name);
        button.setAttribute("data-markdown", result.answer.markdown);
        button.disabled = false;
        insertAtCursor(result.answer.markdown);
      });
  }

  function imagesOf(list) {
    return Array.prototype.filter.call(list || [], function (file) {
      return /^image\//.test(file.type);
    });
  }

  if (body && uploadedBox && body.getAttribute("data-upload")) {
    body.addEventListener("dragover", function (event) {
      if (event.dataTransfer && Array.prototype.indexOf.call(event.dataTransfer.types, "Files") >= 0) {
        event.preventDefault();
      }
    });
    body.addEventListener("drop", function (event) {
      var files = imagesOf(event.dataTransfer && event.dataTransfer.files);
      if (files.length) {
        event.preventDefault();
        files.forEach(upload);
      }
    });
    body.addEventListener("paste", function (event) {
      var files = imagesOf(event.clipboardData && event.clipboardData.files);
      if (files.length) {
        event.preventDefault();
        files.forEach(upload);
      }
    });
  }

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
    // images the post will have: dropped uploads, and files chosen but not yet saved
    form.querySelectorAll('input[name="uploaded"]').forEach(function (field) {
      data.append("uploaded", field.value);
    });
    form.querySelectorAll('input[type="file"][name="images"]').forEach(function (input) {
      Array.prototype.forEach.call(input.files || [], function (file) {
        data.append("pending", file.name);
      });
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
          // a chosen file not yet saved shows from its object URL
          target.querySelectorAll(".body-preview img").forEach(function (img) {
            var name = img.getAttribute("src");
            if (Object.prototype.hasOwnProperty.call(pendingUrls, name)) {
              img.src = pendingUrls[name];
            }
          });
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
