/* The job page's synchronised stem player (Web Audio API, no library) and the original
   upload's playhead. Progressive: without this script every stem keeps its own <audio>
   player and download links; with it, one transport plays every stem sample-aligned, each
   through its own gain (mute, solo, volume). Each stem row keeps its audible gain in
   data-gain and its toggles in aria-pressed, so what the page shows is what is heard. */
(function () {
  "use strict";

  function mmss(t) {
    t = Math.max(0, Math.floor(t || 0));
    var h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), s = t % 60;
    return (h ? h + ":" + String(m).padStart(2, "0") : m) + ":" + String(s).padStart(2, "0");
  }

  function fraction(e, el) {
    var r = el.getBoundingClientRect();
    return r.width ? Math.min(1, Math.max(0, (e.clientX - r.left) / r.width)) : 0;
  }

  function Mixer(root, section) {
    var playBtn = root.querySelector("[data-play]");
    var seek = root.querySelector("[data-seek]");
    var timeEl = root.querySelector("[data-time]");
    var statusEl = root.querySelector("[data-status]");
    var original = section.querySelector("audio[data-original]");
    var duration = parseFloat(root.dataset.duration) || 0;
    var ctx = null, master = null, loading = null, sources = [];
    var playing = false, offset = 0, startedAt = 0, frame = 0;

    var tracks = Array.prototype.map.call(section.querySelectorAll("[data-track]"), function (el) {
      return {el: el, name: el.dataset.name, src: el.dataset.src, muted: false, solo: false, volume: 1,
              buffer: null, gain: null, mute: el.querySelector("[data-mute]"), soloBtn: el.querySelector("[data-solo]"),
              slider: el.querySelector("[data-volume]"), head: el.querySelector(".playhead"),
              wave: el.querySelector("[data-wave]")};
    });

    function say(text) { statusEl.textContent = text; }

    function applyGains() {
      var anySolo = tracks.some(function (t) { return t.solo; });
      tracks.forEach(function (t) {
        var g = t.muted || (anySolo && !t.solo) ? 0 : t.volume;
        t.el.dataset.gain = String(g);
        if (t.gain) t.gain.gain.setTargetAtTime(g, ctx.currentTime, 0.015);
      });
    }

    function load() {
      if (loading) return loading;
      var AC = window.AudioContext || window.webkitAudioContext;
      ctx = new AC();
      master = ctx.createGain();
      master.connect(ctx.destination);
      say("Loading the stems…");
      loading = Promise.all(tracks.map(function (t) {
        return fetch(t.src, {credentials: "same-origin"}).then(function (r) {
          if (!r.ok) return r.text().then(function (text) { throw new Error(text || ("the " + t.name + " stem could not be loaded")); });
          return r.arrayBuffer();
        }).then(function (data) {
          return new Promise(function (resolve, reject) {
            ctx.decodeAudioData(data, resolve, function () { reject(new Error("the " + t.name + " stem could not be decoded")); });
          });
        }).then(function (buffer) {
          t.buffer = buffer;
          t.gain = ctx.createGain();
          t.gain.connect(master);
        });
      })).then(function () {
        duration = Math.max.apply(null, tracks.map(function (t) { return t.buffer.duration; }));
        seek.max = duration.toFixed(3);
        applyGains();
        say("");
      }, function (err) {
        loading = null;
        say("Cannot play: " + err.message);
        throw err;
      });
      return loading;
    }

    function position() { return playing ? Math.min(ctx.currentTime - startedAt, duration) : offset; }

    function startSources() {
      sources = tracks.map(function (t) {
        var s = ctx.createBufferSource();
        s.buffer = t.buffer;
        s.connect(t.gain);
        s.start(0, Math.min(offset, t.buffer.duration));
        return s;
      });
      startedAt = ctx.currentTime - offset;
      playing = true;
    }

    function stopSources() {
      sources.forEach(function (s) { try { s.stop(); } catch (e) { /* already stopped */ } s.disconnect(); });
      sources = [];
    }

    function show() {
      var t = position();
      if (document.activeElement !== seek) seek.value = t.toFixed(1);
      seek.setAttribute("aria-valuetext", mmss(t) + " of " + mmss(duration));
      timeEl.textContent = mmss(t) + " / " + mmss(duration);
      var pct = duration ? (100 * t / duration) + "%" : "0%";
      tracks.forEach(function (tr) { if (tr.head) tr.head.style.left = pct; });
    }

    function tick() {
      show();
      if (!playing) return;
      if (position() >= duration - 0.005) { pause(); offset = 0; show(); return; }
      frame = requestAnimationFrame(tick);
    }

    function setPlaying(on) {
      root.dataset.state = on ? "playing" : "paused";
      playBtn.textContent = on ? "Pause all stems" : "Play all stems";  // the name says the state
    }

    function play() {
      if (original && !original.paused) original.pause();
      playBtn.disabled = true;
      return load().then(function () {
        return ctx.resume();
      }).then(function () {
        playBtn.disabled = false;
        if (playing) return;
        if (offset >= duration) offset = 0;
        startSources();
        setPlaying(true);
        tick();
      }, function () { playBtn.disabled = false; });
    }

    function pause() {
      if (!playing) return;
      offset = position();
      stopSources();
      playing = false;
      cancelAnimationFrame(frame);
      setPlaying(false);
      show();
    }

    function seekTo(t) {
      t = Math.min(Math.max(0, t), duration);
      if (playing) { stopSources(); offset = t; startSources(); } else { offset = t; }
      show();
    }

    playBtn.addEventListener("click", function () { if (playing) pause(); else play(); });
    seek.addEventListener("input", function () { seekTo(parseFloat(seek.value)); });
    tracks.forEach(function (t) {
      if (t.mute) t.mute.addEventListener("click", function () {
        t.muted = !t.muted;
        t.mute.setAttribute("aria-pressed", String(t.muted));
        applyGains();
      });
      if (t.soloBtn) t.soloBtn.addEventListener("click", function () {
        t.solo = !t.solo;
        t.soloBtn.setAttribute("aria-pressed", String(t.solo));
        applyGains();
      });
      if (t.slider) t.slider.addEventListener("input", function () {
        t.volume = parseFloat(t.slider.value);
        t.slider.setAttribute("aria-valuetext", Math.round(t.volume * 100) + " %");
        applyGains();
      });
      if (t.wave) t.wave.addEventListener("click", function (e) { seekTo(fraction(e, t.wave) * duration); });
      var controls = t.el.querySelector("[data-controls]");
      if (controls) controls.hidden = false;
    });
    if (original) original.addEventListener("play", pause);  // one thing heard at a time

    section.classList.add("mixer-ready");
    root.hidden = false;
    root.dataset.state = "paused";
    applyGains();
    show();
    root.mixer = {play: play, pause: pause, seek: seekTo, position: position};  // for tests and the console
  }

  function Original(box) {
    var audio = box.querySelector("audio[data-original]");
    var wave = box.querySelector("[data-wave]");
    var head = box.querySelector(".playhead");
    if (!audio || !wave || !head) return;
    function show() { head.style.left = audio.duration ? (100 * audio.currentTime / audio.duration) + "%" : "0%"; }
    audio.addEventListener("timeupdate", show);
    audio.addEventListener("play", function () { box.classList.add("playing"); });
    wave.addEventListener("click", function (e) {
      var f = fraction(e, wave);
      function go() { audio.currentTime = f * audio.duration; box.classList.add("playing"); show(); }
      if (audio.readyState >= 1) go(); else { audio.addEventListener("loadedmetadata", go, {once: true}); audio.preload = "metadata"; audio.load(); }
    });
  }

  function init(scope) {
    var root = (scope && scope.querySelector ? scope : document).querySelector("[data-mixer]");
    if (root && !root.dataset.ready && (window.AudioContext || window.webkitAudioContext)) {
      root.dataset.ready = "1";
      Mixer(root, root.closest("section") || document);
    }
    var box = document.getElementById("original");
    if (box && !box.dataset.ready) { box.dataset.ready = "1"; Original(box); }
  }

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  // the live panel is swapped in by htmx when the job finishes: the stems arrive then
  document.addEventListener("htmx:load", function (e) { init(e.target); });
})();
