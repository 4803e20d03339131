//! Every script a page may embed, byte for byte: the page's
//! `Content-Security-Policy` allows each by its SHA-256 hash (see
//! [`layout`](crate::html::layout)), so a script not listed here would not
//! run.

/// Polls the task's JSON and reloads the page when its round or phase has
/// changed. Pages work fully without it (a `<noscript>` refresh stands in).
pub(crate) const LIVE_SCRIPT: &str = r#"
(function () {
  var main = document.querySelector("main[data-poll]");
  if (!main || !window.fetch) return;
  var note = document.getElementById("live");
  if (note) note.textContent = "Live: this page reloads when the round or its phase changes.";
  setInterval(function () {
    if (document.hidden) return;
    fetch(main.dataset.poll, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (task) {
        if (task && (String(task.round) !== main.dataset.round || task.phase !== main.dataset.phase)) {
          location.reload();
        }
      })
      .catch(function () {});
  }, 5000);
})();
"#;

/// The try-it box of a market model's page: draw a digit, see the
/// prediction.
pub(crate) const TRY_IT_SCRIPT: &str = include_str!("try_it.js");

/// Every script a page may embed; the policy allows each by its hash.
pub(crate) const SCRIPTS: [&str; 2] = [LIVE_SCRIPT, TRY_IT_SCRIPT];
