/* Events page: the filters are a plain GET form (the URL keeps them); a changed select applies at once. */
(function () {
  "use strict";

  const form = document.getElementById("event-filters");
  for (const el of form.querySelectorAll("select")) el.addEventListener("change", () => form.requestSubmit());
})();
