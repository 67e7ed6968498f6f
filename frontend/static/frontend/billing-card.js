// Pay an invoice by card: Stripe.js (loaded from STRIPE_JS_URL, i.e. from Stripe)
// mounts the card field, and confirms the PaymentIntent fabpool opened for what
// remains due (the client secret comes in the panel htmx swapped in). The card
// number goes from the browser to Stripe; fabpool learns the outcome from
// Stripe's webhook, which marks the invoice paid.
(function () {
  "use strict";

  function setUp(form) {
    if (form.dataset.ready) return;
    form.dataset.ready = "true";
    const errors = form.querySelector("#card-errors");
    const button = form.querySelector("button[type=submit]");
    if (typeof Stripe !== "function") {
      errors.textContent = form.dataset.unavailable;
      button.disabled = true;
      return;
    }
    const stripe = Stripe(form.dataset.publishableKey, { locale: document.documentElement.lang || "auto" });
    const card = stripe.elements().create("card", { hidePostalCode: true });
    card.mount(form.querySelector("#card-element"));
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
        result = await stripe.confirmCardPayment(form.dataset.clientSecret, {
          payment_method: { card: card },
        });
      } catch (error) {
        result = { error: { message: form.dataset.unavailable } };
      }
      form.classList.remove("is-busy");
      if (result.error) {
        errors.textContent = result.error.message || form.dataset.unavailable;
        button.disabled = false;
        return;
      }
      form.hidden = true;
      const done = document.getElementById("card-done");
      done.hidden = false;
      done.focus();
      // The webhook records the payment within seconds: show the invoice as it is then.
      setTimeout(function () { window.location.reload(); }, 4000);
    });
  }

  function scan(root) {
    const scope = root && root.querySelectorAll ? root : document;
    if (scope.matches && scope.matches("[data-card-panel]")) setUp(scope);
    scope.querySelectorAll("[data-card-panel]").forEach(setUp);
  }

  if (window.htmx) {
    window.htmx.onLoad(scan);
  } else {
    document.addEventListener("DOMContentLoaded", function () { scan(document); });
  }
})();
