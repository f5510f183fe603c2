// Copy buttons for secrets shown once, and the progress shown while a plan file is resolved.
// No framework; the pages work without it (the secret is selectable as a whole).
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-copy]");
  if (!button) return;
  var source = document.getElementById(button.getAttribute("data-copy"));
  if (!source || !navigator.clipboard) return;
  navigator.clipboard.writeText(source.textContent.trim()).then(function () {
    var status = document.getElementById(button.getAttribute("data-copy") + "-copied");
    if (status) status.hidden = false;
  });
});
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (!form.matches("[data-progress]")) return;
  var box = document.getElementById(form.getAttribute("data-progress"));
  if (!box) return;
  box.hidden = false;
  var bar = box.querySelector("progress");
  var request = new XMLHttpRequest();
  event.preventDefault();
  request.upload.addEventListener("progress", function (e) {
    if (e.lengthComputable && bar) bar.value = Math.round((e.loaded / e.total) * 50);
  });
  request.upload.addEventListener("load", function () {
    if (bar) bar.removeAttribute("value");  // indeterminate while the registry resolves
  });
  request.addEventListener("load", function () {
    if (request.responseURL && request.responseURL !== window.location.href) {
      window.location.assign(request.responseURL);
    } else {
      document.open(); document.write(request.responseText); document.close();
    }
  });
  request.open("POST", form.action || window.location.href);
  request.send(new FormData(form));
});
