// CAPF Administration: the one script of the UI. It only improves pages
// that work without it: live status on a phone's page (server-sent
// events), live status cells on the phone list and a live campaign page
// (polling the page itself).
"use strict";

(function () {
  function text(id, value) {
    var el = document.getElementById(id);
    if (el && value !== undefined && value !== null) { el.textContent = value; }
  }

  // Phone Configuration: follow /phones/{name}/events.
  function phonePage() {
    var page = document.getElementById("phone");
    if (!page || !page.dataset.events || !window.EventSource) { return; }
    var loadedOp = page.dataset.operation;
    var es = new EventSource(page.dataset.events);
    es.addEventListener("status", function (ev) {
      var d;
      try { d = JSON.parse(ev.data); } catch (e) { return; }
      text("status", d.status);
      text("lsc_status", d.lsc_status);
      text("lsc_serial", d.lsc_serial || "");
      text("lsc_issuer", d.lsc_issuer || "");
      text("lsc_valid_until", d.lsc_valid_until || "");
      text("operation_now", d.operation_label);
      var st = document.getElementById("status");
      if (st) { st.className = "live " + d.status_class; }
      var stale = document.getElementById("stale");
      if (stale) { stale.hidden = d.operation === loadedOp; }
      if (d.contact_at) {
        text("last-contact-at", d.contact_at);
        text("last-contact-remote", d.contact_remote || "");
        text("last-contact-outcome", d.contact_outcome || "");
        text("last-contact-reason", d.contact_reason || "");
        var oc = document.getElementById("last-contact-outcome");
        if (oc) { oc.className = d.contact_class || ""; }
        var dl = document.getElementById("last-contact");
        if (dl) { dl.hidden = false; }
        var none = document.getElementById("last-contact-none");
        if (none) { none.hidden = true; }
      }
    });
  }

  function refetch(url, then) {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) { then(new DOMParser().parseFromString(html, "text/html")); })
      .catch(function () { /* keep the page as it is; the next poll retries */ });
  }

  // Find and List Phones: refresh the status cells every few seconds.
  function phoneList() {
    var table = document.getElementById("phone-table");
    if (!table) { return; }
    setInterval(function () {
      if (document.hidden) { return; }
      refetch(window.location.href, function (doc) {
        doc.querySelectorAll("[data-status-for]").forEach(function (cell) {
          var id = cell.id;
          var mine = id && document.getElementById(id);
          if (mine && mine.textContent !== cell.textContent) {
            mine.textContent = cell.textContent;
            mine.className = cell.className;
          }
        });
      });
    }, 3000);
  }

  // Campaign progress: replace the live section until the campaign ends.
  function campaignPage() {
    var live = document.getElementById("campaign-live");
    if (!live || live.dataset.active !== "true") { return; }
    var timer = setInterval(function () {
      refetch(live.dataset.href || window.location.href, function (doc) {
        var fresh = doc.getElementById("campaign-live");
        if (!fresh) { return; }
        var cur = document.getElementById("campaign-live");
        cur.replaceWith(document.importNode(fresh, true));
        if (fresh.dataset.active !== "true") { clearInterval(timer); }
      });
    }, 2000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    phonePage();
    phoneList();
    campaignPage();
  });
})();
