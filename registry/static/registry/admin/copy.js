// Copy buttons of the admin's "shown once" pages: the button copies its target's whole text.
document.addEventListener("click", function (event) {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const text = document.getElementById(button.dataset.copy).textContent.trim();
  navigator.clipboard.writeText(text).then(function () {
    button.textContent = button.dataset.copied;
  });
});
