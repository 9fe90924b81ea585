// The console's forms: manual registration, vehicle check, shift start/end, disinfection.
"use strict";
(() => {
  const gp = window.gatepost;
  const { $, $$, both, say, word, reasonPair, setContent, element } = gp;
  const { act, message, needVolunteer, showTab } = gp;
  let registeringHold = null;
  let submitting = false;

  // --- registration ------------------------------------------------------------------

  function setRegisteringHold(hold) {
    registeringHold = hold;
    const banner = $("#registering-hold");
    banner.hidden = !hold;
    $("#registration-cancel").hidden = !hold;
    if (hold) setContent(banner, say("registeringFor", { who: hold.masked_name || hold.hold_id }));
  }

  function formFields(form, prefix) {
    const fields = {};
    for (const input of $$("input:not([type=radio])", form)) {
      if (!input.name.startsWith(prefix)) continue;
      const value = input.value.trim();
      if (value) fields[input.name.slice(prefix.length)] = value;
    }
    return fields;
  }

  $("#form-registration").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    if (!needVolunteer()) return;
    const registration = formFields(form, "registration.");
    if (!("name" in registration)) registration.name = "";
    if (!("id_number" in registration)) registration.id_number = "";
    if (registration.vehicle_plate) registration.vehicle_plate = registration.vehicle_plate.toUpperCase();
    const button = $('[type="submit"]', form);
    const hold = registeringHold;
    if (!hold) {
      act(button, form, "/api/registrations", { registration }, () => {
        form.reset();
        message("ok", say("registeredId"));
      });
      return;
    }
    // While this is in flight the stream may already drop the hold: that is this
    // registration's doing, not someone else's, so renderHolds must not say otherwise.
    submitting = true;
    const body = { resolution: "registered", registration };
    act(button, form, `/api/holds/${encodeURIComponent(hold.hold_id)}/resolve`, body, (update) => {
      form.reset();
      setRegisteringHold(null);
      showTab("gate");
      gp.render(update);
      message("ok", say("registeredId"));
    }).finally(() => { submitting = false; });
  });

  $("#registration-cancel").addEventListener("click", () => {
    setRegisteringHold(null);
    showTab("gate");
  });

  // --- vehicles ----------------------------------------------------------------------

  function addOccupant() {
    const list = $("#occupants");
    const n = list.children.length;
    const input = element("input", {
      type: "number", step: "0.1", min: "25", max: "45", inputMode: "decimal",
      name: `occupant_temperatures_c.${n}`, dataset: { testid: `occupant-${n}` },
    });
    const remove = element("button", { type: "button", className: "secondary" }, say("remove"));
    const row = element("li", {},
      element("label", {}, say("occupant", { n: n + 1 }), input),
      remove,
      element("p", { className: "error", dataset: { errorFor: `occupant_temperatures_c.${n}` } }));
    remove.addEventListener("click", () => { row.remove(); renumberOccupants(); });
    list.append(row);
    renumberOccupants();
    return input;
  }

  // Field names follow the row's position, so a 422 for occupant 2 lands on row 2.
  function renumberOccupants() {
    const rows = $$("#occupants > li");
    rows.forEach((row, n) => {
      const input = $("input", row);
      input.name = `occupant_temperatures_c.${n}`;
      input.dataset.testid = `occupant-${n}`;
      $("label", row).replaceChildren(say("occupant", { n: n + 1 }), input);
      $(".error", row).dataset.errorFor = `occupant_temperatures_c.${n}`;
      $("button", row).disabled = rows.length === 1;
    });
  }

  $("#add-occupant").addEventListener("click", () => addOccupant().focus());

  $("#form-vehicle").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    if (!needVolunteer()) return;
    const body = {
      vehicle_plate: $('[name="vehicle_plate"]', form).value.trim().toUpperCase(),
      direction: $('[name="direction"]:checked', form).value,
      // An empty or unreadable box is sent as null so the node names that occupant.
      occupant_temperatures_c: $$("#occupants input", form).map((input) =>
        (Number.isNaN(input.valueAsNumber) ? null : input.valueAsNumber)),
    };
    const result = $("#vehicle-result");
    result.hidden = true;
    act($('[type="submit"]', form), form, "/api/vehicle-checks", body, (decision) => {
      result.dataset.outcome = decision.outcome;
      setContent(result, say(`outcome.${decision.outcome}`), " ",
        element("span", { className: "plate", dataset: { testid: "vehicle-result-plate" } }, decision.vehicle_plate || ""));
      for (const code of decision.reasons) result.append(element("div", {}, both(reasonPair(code))));
      result.hidden = false;
      result.scrollIntoView({ block: "nearest" });  // below the fold on a 7-inch panel
    });
  });

  // --- shifts and disinfection -------------------------------------------------------

  const badgeInput = $('#form-shift [name="badge_text"]');
  // A scanner ends the text with Enter: wait for the volunteer to say start, sign in or end.
  badgeInput.addEventListener("keydown", (event) => { if (event.key === "Enter") event.preventDefault(); });
  $("#form-shift").addEventListener("submit", (event) => event.preventDefault());
  for (const button of $$("#form-shift [data-action]")) {
    button.addEventListener("click", () => {
      const form = $("#form-shift");
      const action = button.dataset.action;
      const badge = badgeInput.value.trim();
      badgeInput.value = "";  // the badge text is a credential: do not leave it on screen
      if (action === "sign-in") {
        act(button, form, "/api/session", { badge_text: badge }, (who) => {
          gp.beginSession(who);
          showTab("gate");
        });
        return;
      }
      act(button, form, "/api/shifts", { badge_text: badge, action }, (shift) => {
        const key = action === "start" ? "shiftStarted" : "shiftEnded";
        const words = say(key, { name: shift.masked_name, id: shift.volunteer_id });
        if (action === "start") {
          gp.beginSession(shift);  // starting a shift signs its volunteer in here
          showTab("gate");
        } else if (shift.volunteer_id === gp.volunteer()) {
          gp.endSession();
        }
        message("ok", words);
      });
    });
  }

  $("#form-disinfection").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    if (!needVolunteer()) return;
    const area = $('[name="area"]:checked', form).value;
    const agent = $('[name="agent"]', form).value.trim();
    const body = { area, ...(agent ? { agent } : {}) };
    act($('[type="submit"]', form), form, "/api/disinfections", body, (update) => {
      gp.render(update);
      message("ok", say("logged", { area: word(`area.${area}`) }));
    });
  });

  addOccupant();
  // The hold the registration form is open for; null while its registration is being sent.
  const openFor = () => (submitting ? null : registeringHold);
  Object.assign(gp, { setRegisteringHold, registeringHold: openFor });
})();
