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
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.getAttribute("data-post"));
  });

  calendar.addEventListener("dragend", function () {
    dragged = null;
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
    // the day is where it was dropped; the time of day stays (the card's form changes it)
    var data = new FormData();
    data.append("csrf_token", token);
    data.append("post_id", card.getAttribute("data-post"));
    data.append("date", cell.getAttribute("data-date"));
    data.append("time", card.getAttribute("data-time"));
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
