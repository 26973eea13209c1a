// Starts Swagger UI (served by this server from the swagger-ui-bundle package; no CDN) on ./openapi.json.
// A separate file so that the page's CSP needs no inline script. "Authorize" takes the bearer token.
'use strict';
window.addEventListener('load', () => {
  window.ui = SwaggerUIBundle({
    url: 'openapi.json',
    dom_id: '#swagger-ui',
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: 'BaseLayout',
  });
});
