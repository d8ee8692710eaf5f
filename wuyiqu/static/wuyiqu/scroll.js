/* Tables in a .table-scroll box: show the box's hint (.scroll-hint, "左右滑动查看") only while the
   table is wider than the box, on load, on resize and after an htmx swap. No inline script (CSP). */
(function () {
  "use strict";

  function update() {
    document.querySelectorAll(".table-scroll").forEach(function (box) {
      var overflowing = box.scrollWidth > box.clientWidth + 1;
      box.classList.toggle("is-overflowing", overflowing);
      var hint = box.previousElementSibling;
      if (hint && hint.classList.contains("scroll-hint")) {
        hint.hidden = !overflowing;
      }
    });
  }

  var pending = null;
  function soon() {
    if (pending) { return; }
    pending = window.requestAnimationFrame(function () { pending = null; update(); });
  }

  document.addEventListener("DOMContentLoaded", update);
  window.addEventListener("load", update);
  window.addEventListener("resize", soon);
  document.addEventListener("htmx:afterSettle", soon);
  document.addEventListener("toggle", soon, true);  // a table inside <details> opened
  if (window.MutationObserver) {
    new MutationObserver(soon).observe(document.documentElement, { childList: true, subtree: true });
  }
})();
