/* Tollway portal: progressive enhancement only. Every page works without this file. */
(function () {
  "use strict";

  // Copy buttons are hidden in the markup and shown only when copying can work.
  document.querySelectorAll("[data-copy-target]").forEach(function (button) {
    if (!navigator.clipboard) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      var source = document.getElementById(button.getAttribute("data-copy-target"));
      var status = document.getElementById(button.getAttribute("data-copy-status"));
      var text = source.value !== undefined ? source.value : source.textContent;
      navigator.clipboard.writeText(text.trim()).then(
        function () { if (status) status.textContent = "Copied to the clipboard."; },
        function () { if (status) status.textContent = "Copying failed: select the text and copy it yourself."; }
      );
    });
  });

  // A key just created is kept in this tab's sessionStorage (never sent to the
  // server again, gone when the tab closes) so the API reference's try-it can use it.
  document.querySelectorAll("[data-remember-key]").forEach(function (el) {
    try {
      window.sessionStorage.setItem("tollway.key." + el.getAttribute("data-prefix"), el.getAttribute("data-remember-key"));
    } catch (e) { /* storage disabled: the developer pastes the key instead */ }
  });

  // Select the whole secret on focus, so keyboard users can copy it at once.
  document.querySelectorAll("input[data-select-on-focus]").forEach(function (input) {
    input.addEventListener("focus", function () { input.select(); });
  });
})();
