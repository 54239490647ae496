/* Groups page (operators): create, rename / describe and delete groups through /v1.0/subcloud-groups.
 * The API's rules decide (Default cannot be renamed or deleted); its error message is shown as it is. */
(function () {
  "use strict";

  const { api, confirm } = window.dcportal;
  const result = document.getElementById("group-result");

  function say(text, ok) {
    result.className = ok ? "result done" : "result error";
    result.textContent = text;
  }

  async function done(response, text) {
    if (!response.ok) return say(response.data.error_message, false);
    sessionStorage.setItem("dcportal-group-result", text);
    location.reload(); // the groups (names, counts) are rendered by the server
  }

  const kept = sessionStorage.getItem("dcportal-group-result");
  if (kept) {
    sessionStorage.removeItem("dcportal-group-result");
    say(kept, true);
  }

  document.getElementById("new-group").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const body = { name: form.elements.name.value };
    if (form.elements.description.value) body.description = form.elements.description.value;
    await done(await api("POST", "/v1.0/subcloud-groups", body), `Group ${body.name} created.`);
  });

  document.getElementById("groups-table").addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const row = button.closest("tr");
    const url = `/v1.0/subcloud-groups/${row.dataset.id}`;
    if (button.dataset.action === "save") {
      const body = { description: row.querySelector('[name="description"]').value };
      const name = row.querySelector('[name="name"]');
      if (!name.disabled) body.name = name.value;
      await done(await api("PATCH", url, body), `Group ${body.name || row.dataset.group} saved.`);
    } else {
      const n = Number(button.dataset.count);
      const ok = await confirm(
        `Delete group ${row.dataset.group}? Its ${n} subcloud${n === 1 ? "" : "s"} move to Default.`);
      if (ok) await done(await api("DELETE", url), `Group ${row.dataset.group} deleted.`);
    }
  });
})();
