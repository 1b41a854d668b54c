// The explorer's few behaviours; the pages work without them.
(function () {
  "use strict";
  function ready() {
    // Pan and zoom on the lineage graph (svg-pan-zoom, vendored: see LICENSES.txt).
    var svg = document.querySelector("#graph svg");
    if (svg && window.svgPanZoom) {
      svg.removeAttribute("width");
      svg.removeAttribute("height");
      svg.style.width = "100%";
      svg.style.height = "100%";
      window.explorerPanZoom = window.svgPanZoom(svg, {
        controlIconsEnabled: true, fit: true, center: true, minZoom: 0.02, maxZoom: 20,
        dblClickZoomEnabled: true
      });
      // A small graph is fitted no larger than 1.2 times its drawn size, not blown up.
      var zoom = window.explorerPanZoom.getSizes().realZoom;
      if (zoom > 1.2) {
        window.explorerPanZoom.zoomBy(1.2 / zoom);
        window.explorerPanZoom.center();
      }
    }
    // Compare: the button is usable when exactly two runs are picked.
    var button = document.getElementById("compare-button");
    if (button) {
      var picks = document.querySelectorAll("input.pick");
      var update = function () {
        var n = 0;
        picks.forEach(function (p) { if (p.checked) { n += 1; } });
        button.disabled = n !== 2;
      };
      picks.forEach(function (p) { p.addEventListener("change", update); });
      update();
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
}());
