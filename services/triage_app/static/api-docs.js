// Starts Swagger UI on /api/docs from a file of the app's own: the CSP allows no inline script.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  if (!root || typeof SwaggerUIBundle !== "function") { return; }
  SwaggerUIBundle({url: root.getAttribute("data-openapi"), dom_id: "#swagger-ui", deepLinking: true});
}());
