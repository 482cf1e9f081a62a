"use strict";
// claimant's own start-up of Swagger UI (a file, not an inline script, so the
// docs page's CSP can forbid inline code). No validator: nothing leaves the
// server the page came from.
window.ui = SwaggerUIBundle({
  url: location.pathname.replace(/\/docs\/?$/, "") + "/openapi.json",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
});
