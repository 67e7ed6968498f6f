// Save a card for the platforms to charge later: Stripe.js (loaded from
// STRIPE_JS_URL, i.e. from Stripe) mounts the card field and confirms the
// SetupIntent fabpool opened (its client secret comes in the panel htmx swapped
// in). The card number goes from the browser to Stripe; the form then posts the
// SetupIntent's id only, and fabpool asks Stripe which card it holds.
(function () {
  "use strict";

  function setUp(form) {
    if (form.dataset.ready) return;
    form.dataset.ready = "true";
    const errors = form.querySelector("#setup-card-errors");
    const button = form.querySelector("button[type=submit]");
    if (typeof Stripe !== "function") {
      errors.textContent = form.dataset.unavailable;
      button.disabled = true;
      return;
    }
    const stripe = Stripe(form.dataset.publishableKey, { locale: document.documentElement.lang || "auto" });
    const card = stripe.elements().create("card", { hidePostalCode: true });
    card.mount(form.querySelector("#setup-card-element"));
    card.on("change", function (event) {
      errors.textContent = event && event.error ? event.error.message : "";
    });
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      button.disabled = true;
      form.classList.add("is-busy");
      errors.textContent = "";
      let result;
      try {
        result = await stripe.confirmCardSetup(form.dataset.clientSecret, {
          payment_method: { card: card },
        });
      } catch (error) {
        result = { error: { message: form.dataset.unavailable } };
      }
      if (result.error) {
        form.classList.remove("is-busy");
        errors.textContent = result.error.message || form.dataset.unavailable;
        button.disabled = false;
        return;
      }
      // Confirmed at Stripe: fabpool records it and shows the page again.
      HTMLFormElement.prototype.submit.call(form);
    });
  }

  function scan(root) {
    const scope = root && root.querySelectorAll ? root : document;
    if (scope.matches && scope.matches("[data-card-setup]")) setUp(scope);
    scope.querySelectorAll("[data-card-setup]").forEach(setUp);
  }

  if (window.htmx) {
    window.htmx.onLoad(scan);
  } else {
    document.addEventListener("DOMContentLoaded", function () { scan(document); });
  }
})();
