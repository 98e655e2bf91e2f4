// ClearStem UI behaviour, no build step. Every form works without it; it adds drag-and-drop
// with upload progress (one file, or many with a row each) on forms marked data-upload.
(function () {
  "use strict";

  function post(form, file, onProgress, perFileFields) {
    return new Promise(function (resolve) {
      var xhr = new XMLHttpRequest();
      var data = new FormData(form);
      data.set("file", file, file.name);
      // typed title/artist/ISRC describe one recording: with several files each file's own tags count
      (perFileFields || []).forEach(function (name) { data.delete(name); });
      xhr.open("POST", form.action);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.onprogress = function (e) { if (e.lengthComputable) onProgress(e.loaded / e.total); };
      xhr.onload = function () {
        var body;
        try { body = JSON.parse(xhr.responseText); } catch (err) { body = {detail: "the server answered " + xhr.status}; }
        resolve({status: xhr.status, body: body});
      };
      xhr.onerror = function () { resolve({status: 0, body: {detail: "the upload did not reach the server (network error)"}}); };
      xhr.send(data);
    });
  }

  function setBar(bar, fraction) { if (bar) bar.style.width = Math.round(fraction * 100) + "%"; }

  function single(form, files) {
    var file = files[0];
    var bar = form.querySelector("[data-progress] > span");
    var status = form.querySelector("[data-status]");
    form.querySelector("[data-progress]").hidden = false;
    status.className = "hint";
    status.textContent = "Uploading " + file.name + "…";
    form.setAttribute("aria-busy", "true");
    post(form, file, function (f) {
      setBar(bar, f);
      if (f >= 1) status.textContent = "Uploaded. Decoding, fingerprinting and checking the licensed catalog…";
    }).then(function (r) {
      form.removeAttribute("aria-busy");
      if (r.status === 201 && r.body.redirect) { window.location.assign(r.body.redirect); return; }
      setBar(bar, 0);
      status.className = "error";
      status.textContent = file.name + " was refused: " + (r.body.detail || "unknown error") +
        (r.body.code ? " (" + r.body.code + ")" : "");
    });
  }

  function bulk(form, files) {
    var list = form.querySelector("[data-filelist]");
    var summary = form.querySelector("[data-status]");
    var rows = Array.prototype.map.call(files, function (file) {
      var li = document.createElement("li");
      li.innerHTML = '<span class="name"></span><div class="progress"><span></span></div><span class="status hint">waiting</span>';
      li.querySelector(".name").textContent = file.name;
      list.appendChild(li);
      return {file: file, li: li};
    });
    // each verdict counted exactly: a file already in the catalog is not "registered"
    var counts = {registered: 0, already: 0, refused: 0};
    var total = document.querySelector("[data-total]");
    function tally(done) {
      summary.textContent = (done ? "" : "Registering " + rows.length + " file(s): ") + counts.registered +
        " registered, " + counts.already + " already registered, " + counts.refused + " refused.";
    }
    form.setAttribute("aria-busy", "true");
    summary.className = "hint";
    tally(false);
    rows.reduce(function (chain, row) {
      return chain.then(function () {
        var st = row.li.querySelector(".status");
        st.textContent = "uploading…";
        return post(form, row.file, function (f) {
          setBar(row.li.querySelector(".progress > span"), f);
          if (f >= 1) st.textContent = "fingerprinting…";
        }, rows.length > 1 ? ["title", "artist", "isrc"] : []).then(function (r) {
          if (r.status === 200 || r.status === 201) {
            counts[r.status === 201 ? "registered" : "already"] += 1;
            st.className = "status ok";
            st.textContent = (r.status === 201 ? "registered as “" : "already registered as “") + r.body.title + "”";
            if (total && typeof r.body.total === "number") total.textContent = r.body.total;
          } else {
            counts.refused += 1;
            setBar(row.li.querySelector(".progress > span"), 0);
            st.className = "status bad";
            st.textContent = "refused: " + (r.body.detail || "error") + (r.body.code ? " (" + r.body.code + ")" : "");
          }
          tally(false);
        });
      });
    }, Promise.resolve()).then(function () {
      form.removeAttribute("aria-busy");
      summary.className = counts.refused ? "error" : "hint";
      tally(true);
      var target = document.querySelector(form.dataset.refresh || "#none");
      if (target && window.htmx && counts.registered) htmx.ajax("GET", target.dataset.src, {target: target, swap: "innerHTML"});
    });
  }

  // Fields a form marked data-require="a b" needs before anything is sent (the label's
  // territories apply to every file, so they are set first).
  function missing(form) {
    var names = (form.dataset.require || "").split(" ").filter(Boolean);
    for (var i = 0; i < names.length; i++) {
      var field = form.elements[names[i]];
      if (field && !field.value.trim()) return field;
    }
    return null;
  }

  function wire(form) {
    var zone = form.querySelector(".dropzone");
    var input = form.querySelector("input[type=file]");
    var handle = form.dataset.upload === "bulk" ? bulk : single;
    var staged = null;
    form.querySelectorAll("[data-nojs]").forEach(function (el) { el.hidden = true; });
    function start(files) {
      var field = missing(form);
      var status = form.querySelector("[data-status]");
      if (field) {
        status.className = "error";
        status.textContent = "Set " + (field.labels && field.labels[0] ? field.labels[0].textContent.replace(/^\d+\.\s*/, "") : field.name) +
          " first: nothing was sent.";
        field.setAttribute("aria-invalid", "true");
        field.focus();
        return;
      }
      staged = null;
      handle(form, files);
    }
    function take(files) {
      if (!files || !files.length) return;
      if (form.dataset.upload !== "bulk") { start(files); return; }
      // bulk: stage the files; Register sends them, once the fields above are right
      staged = files;
      var status = form.querySelector("[data-status]");
      status.className = "hint";
      status.textContent = files.length + " file(s) ready. Check the territories, then press Register.";
      var button = form.querySelector("[data-register]");
      if (button) button.textContent = "Register " + files.length + " file" + (files.length === 1 ? "" : "s");
    }
    ["dragenter", "dragover"].forEach(function (ev) {
      zone.addEventListener(ev, function (e) { e.preventDefault(); zone.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (ev) {
      zone.addEventListener(ev, function (e) { e.preventDefault(); zone.classList.remove("over"); });
    });
    zone.addEventListener("drop", function (e) { take(e.dataTransfer.files); });
    input.addEventListener("change", function () { take(input.files); });
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      if (form.dataset.upload === "bulk") { if (staged || input.files.length) start(staged || input.files); return; }
      take(input.files);
    });
  }

  // At phone width tables stack their cells (app.css): each cell shows its column's name from
  // data-label, filled in here from the header where the template did not set one.
  function labelCells(root) {
    (root.querySelectorAll ? root : document).querySelectorAll(".table-wrap table").forEach(function (table) {
      var heads = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) {
        return th.textContent.trim();
      });
      table.querySelectorAll("tbody tr").forEach(function (tr) {
        var col = 0;
        Array.prototype.forEach.call(tr.children, function (td) {
          if (!td.hasAttribute("data-label") && !td.hasAttribute("colspan") && heads[col]) {
            td.setAttribute("data-label", heads[col]);
          }
          col += td.colSpan || 1;
        });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-upload]").forEach(wire);
    labelCells(document);
  });
  document.addEventListener("htmx:load", function (e) { labelCells(e.target.closest(".table-wrap") || e.target); });
})();
