/* API reference: Swagger UI from drf-spectacular-sidecar, and the key picker for try-it. */
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  if (!root || !window.SwaggerUIBundle) return;

  var SCHEME = "TollwayKey";
  var ui = window.SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    dom_id: "#swagger-ui",
    deepLinking: false,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    persistAuthorization: false,
    tryItOutEnabled: false
  });
  window.tollwaySwaggerUI = ui;

  var picker = document.querySelector("[data-key-picker]");
  if (!picker) return;
  var choice = picker.querySelector("[data-key-choice]");
  var secret = picker.querySelector("[data-key-secret]");
  var status = picker.querySelector("[data-key-status]");

  function remembered(prefix) {
    try { return window.sessionStorage.getItem("tollway.key." + prefix) || ""; } catch (e) { return ""; }
  }
  function fill() {
    var known = remembered(choice.value);
    secret.value = known;
    status.textContent = known ? "Filled in the key you created in this tab." : "";
  }
  choice.addEventListener("change", fill);
  fill();

  picker.querySelector("[data-key-apply]").addEventListener("click", function () {
    var value = secret.value.trim();
    if (!value) { status.textContent = "Paste the full key first."; secret.focus(); return; }
    if (value.indexOf(choice.value) !== 0) {
      status.textContent = "That key does not start with " + choice.value + ". Check you pasted the right one.";
      return;
    }
    ui.preauthorizeApiKey(SCHEME, value);
    status.textContent = "Key set. Open an operation, choose “Try it out”, then “Execute”.";
  });
})();
