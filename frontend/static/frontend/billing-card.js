// Card forms: Stripe.js (loaded from STRIPE_JS_URL, i.e. from Stripe) mounts the
// card field and confirms what fabpool opened for the form (its client secret
// comes in the panel htmx swapped in). The card number goes from the browser to
// Stripe, never to fabpool.
// - data-card-form="pay": a PaymentIntent for what remains due. fabpool learns
//   the outcome from Stripe's webhook, which marks the invoice paid.
// - data-card-form="save": a SetupIntent, for the platforms to charge later. The
//   form then posts the SetupIntent's id only; fabpool asks Stripe which card it holds.
(function () {
  "use strict";

  const CONFIRM = { pay: "confirmCardPayment", save: "confirmCardSetup" };

  function confirmed(form) {
    if (form.dataset.cardForm === "save") {
      HTMLFormElement.prototype.submit.call(form); // fabpool records the card
      return;
    }
    form.classList.remove("is-busy");
    form.hidden = true;
    const done = document.getElementById("card-done");
    done.hidden = false;
    done.focus();
    // The webhook records the payment within seconds: show the invoice as it is then.
    setTimeout(function () { window.location.reload(); }, 4000);
  }

  function setUp(form) {
    if (form.dataset.ready) return;
    form.dataset.ready = "true";
    const errors = form.querySelector("[data-card-errors]");
    const button = form.querySelector("button[type=submit]");
    if (typeof Stripe !== "function") {
      errors.textContent = form.dataset.unavailable;
      button.disabled = true;
      return;
    }
    const stripe = Stripe(form.dataset.publishableKey, { locale: document.documentElement.lang || "auto" });
    const card = stripe.elements().create("card", { hidePostalCode: true });
    card.mount(form.querySelector("[data-card-element]"));
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
        result = await stripe[CONFIRM[form.dataset.cardForm]](form.dataset.clientSecret, {
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
      confirmed(form);
    });
  }

  function scan(root) {
    const scope = root && root.querySelectorAll ? root : document;
    if (scope.matches && scope.matches("[data-card-form]")) setUp(scope);
    scope.querySelectorAll("[data-card-form]").forEach(setUp);
  }

  if (window.htmx) {
    window.htmx.onLoad(scan);
  } else {
    document.addEventListener("DOMContentLoaded", function () { scan(document); });
  }
})();
