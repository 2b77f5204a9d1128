// Filter the rows of a table as the reader types; highlight the event a condition points at.
// Nothing is sent anywhere: the page already holds the rows.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("input[data-filter]").forEach(function (input) {
    var table = document.getElementById(input.getAttribute("data-filter"));
    var counter = document.getElementById("rows-shown");
    if (!table) { return; }
    input.addEventListener("input", function () {
      var needle = input.value.trim().toLowerCase();
      var shown = 0;
      table.querySelectorAll("tbody tr").forEach(function (row) {
        var hit = needle === "" || row.textContent.toLowerCase().indexOf(needle) !== -1;
        row.hidden = !hit;
        if (hit) { shown += 1; }
      });
      if (counter) {
        counter.textContent = shown.toLocaleString("en-US");
        counter.setAttribute("data-value", String(shown));
      }
    });
  });
  document.querySelectorAll("a.cond-link").forEach(function (link) {
    link.addEventListener("click", function () {
      document.querySelectorAll("tr.hit").forEach(function (row) { row.classList.remove("hit"); });
      var row = document.getElementById(link.getAttribute("data-event"));
      if (row) { row.classList.add("hit"); }
    });
  });
});
