// kepubot console: drag a planned post to another day of the calendar. Without this script
// each card has a "move" form; both end in POST /calendar/move (the service layer decides).
"use strict";
(function () {
  var calendar = document.getElementById("calendar");
  var message = document.getElementById("calendar-message");
  if (!calendar || !message) {
    return;
  }
  var token = document.querySelector('meta[name="csrf-token"]');
  token = token ? token.getAttribute("content") : "";
  var dragged = null;

  function show(text) {
    message.textContent = text;
    message.hidden = false;
  }

  calendar.addEventListener("dragstart", function (event) {
    var card = event.target.closest ? event.target.closest(".card.movable") : null;
    if (!card) {
      return;
    }
    dragged = card;
    card.classList.add("dragging");
    // the week view's time slots appear once the drag has begun (not under the pointer
    // while the browser starts it)
    window.setTimeout(function () {
      document.body.classList.add("dragging-card");
    }, 0);
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.getAttribute("data-post"));
  });

  calendar.addEventListener("dragend", function () {
    dragged = null;
    document.body.classList.remove("dragging-card");
    calendar.querySelectorAll(".dragging, .drop-target").forEach(function (element) {
      element.classList.remove("dragging", "drop-target");
    });
  });

  calendar.addEventListener("dragover", function (event) {
    var cell = event.target.closest ? event.target.closest("[data-date]") : null;
    if (!cell || !dragged) {
      return;
    }
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    calendar.querySelectorAll(".drop-target").forEach(function (other) {
      if (other !== cell) {
        other.classList.remove("drop-target");
      }
    });
    cell.classList.add("drop-target");
    calendar.querySelectorAll(".slot.drop-target").forEach(function (other) {
      other.classList.remove("drop-target");
    });
    var slot = event.target.closest(".slot[data-time]");
    if (slot) {
      slot.classList.add("drop-target");
    }
  });

  calendar.addEventListener("drop", function (event) {
    var cell = event.target.closest ? event.target.closest("[data-date]") : null;
    if (!cell || !dragged) {
      return;
    }
    event.preventDefault();
    var card = dragged;
    dragged = null;
    cell.classList.remove("drop-target");
    // the day is where it was dropped; the time is the slot it was dropped on (week view),
    // else the card's own time of day (the card's form changes either)
    var slot = event.target.closest(".slot[data-time]");
    var data = new FormData();
    data.append("csrf_token", token);
    data.append("post_id", card.getAttribute("data-post"));
    data.append("date", cell.getAttribute("data-date"));
    data.append("time", slot ? slot.getAttribute("data-time") : card.getAttribute("data-time"));
    card.classList.add("moving");
    fetch(calendar.getAttribute("data-move"), {
      method: "POST",
      body: data,
      headers: { Accept: "application/json", "X-CSRF-Token": token },
      credentials: "same-origin",
    })
      .then(function (response) {
        return response.json().catch(function () {
          return { ok: false, message: "HTTP " + response.status };
        });
      })
      .then(function (result) {
        card.classList.remove("moving");
        if (result.ok) {
          window.location.reload();
        } else {
          show(result.message);
        }
      })
      .catch(function (error) {
        card.classList.remove("moving");
        show(String(error));
      });
  });
})();
