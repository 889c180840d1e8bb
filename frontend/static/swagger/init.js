// Swagger UI over the server's own OpenAPI document. This lives in a file,
// not an inline <script>: the page's CSP allows scripts from 'self' only.
// The document's URL comes from the page (data-spec-url), so it is written
// in one place, the server's route table.
"use strict";

window.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    deepLinking: true,
    // The default would fetch a badge from validator.swagger.io: the page
    // must work offline, and its CSP would block it anyway.
    validatorUrl: null,
  });
});
