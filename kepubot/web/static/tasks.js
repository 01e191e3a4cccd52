// kepubot console, assisted task page: copy one part to the clipboard. No framework.
// data-copy: a textarea's text; data-copy-rich: a block's formatted text (HTML and plain),
// which an outlet's rich-text editor keeps as headings, lists and links.
"use strict";
(function () {
  function flash(button) {
    var label = button.textContent;
    button.textContent = button.getAttribute("data-copied") || label;
    setTimeout(function () { button.textContent = label; }, 1500);
  }
  function selectAndCopy(node) {
    var range = document.createRange();
    range.selectNodeContents(node);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    document.execCommand("copy");
    selection.removeAllRanges();
  }
  document.querySelectorAll("button.copy").forEach(function (button) {
    button.addEventListener("click", function () {
      var rich = button.getAttribute("data-copy-rich");
      var node = document.getElementById(rich || button.getAttribute("data-copy"));
      if (!node) { return; }
      var secure = navigator.clipboard && window.isSecureContext;
      if (rich) {
        if (secure && window.ClipboardItem) {
          var item = new ClipboardItem({
            "text/html": new Blob([node.innerHTML], { type: "text/html" }),
            "text/plain": new Blob([node.innerText], { type: "text/plain" })
          });
          navigator.clipboard.write([item]).then(function () { flash(button); }, function () {
            selectAndCopy(node); flash(button);
          });
        } else {
          selectAndCopy(node);
          flash(button);
        }
        return;
      }
      if (secure) {
        navigator.clipboard.writeText(node.value).then(function () { flash(button); }, function () {
          node.select(); document.execCommand("copy"); flash(button);
        });
      } else {
        node.select();
        document.execCommand("copy");
        flash(button);
      }
    });
  });
})();
