// Portcullis pages: a client of the JSON API on the same origin (SPEC §12).
// The session lives in the refresh cookie (HttpOnly, set by the API); the
// access token lives only in this closure, never in storage or cookies.
(function () {
  "use strict";

  var body = document.body;
  var prefix = body.getAttribute("data-prefix") || "/api/auth";
  var texts = {};
  try {
    texts = JSON.parse(body.getAttribute("data-texts") || "{}");
  } catch (e) {
    texts = {};
  }

  function t(key, fallback) {
    return texts[key] || fallback || texts["error.UNKNOWN"] || key;
  }

  // One call to the API: {ok, status, data} or {ok: false, status, error}.
  async function api(method, path, data, token) {
    var headers = { Accept: "application/json" };
    var init = { method: method, headers: headers, credentials: "same-origin", cache: "no-store" };
    if (data !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(data);
    }
    if (token) {
      headers.Authorization = "Bearer " + token;
    }
    var response;
    try {
      response = await fetch(prefix + path, init);
    } catch (e) {
      return { ok: false, status: 0, error: { code: "NETWORK", message: "" } };
    }
    var json = null;
    try {
      json = await response.json();
    } catch (e) {
      json = null;
    }
    if (response.ok && json && json.success) {
      return { ok: true, status: response.status, data: json.data };
    }
    return {
      ok: false,
      status: response.status,
      error: (json && json.error) || { code: response.status >= 500 ? "SERVICE_UNAVAILABLE" : "UNKNOWN", message: "" },
      retryAfter: response.headers.get("Retry-After"),
    };
  }

  function message(result) {
    var text = t("error." + result.error.code, result.error.message);
    if (result.error.code === "RATE_LIMITED" && result.retryAfter) {
      text += " " + t("js.retry_after").replace("{seconds}", result.retryAfter);
    }
    return text;
  }

  // ---- errors next to their fields, summed up on top --------------------------

  var summary = document.getElementById("error-summary");

  function clearErrors(form) {
    if (summary) {
      summary.hidden = true;
      summary.querySelector("ul").textContent = "";
    }
    form.querySelectorAll(".field").forEach(function (field) {
      field.classList.remove("has-error");
      var line = field.querySelector(".field-error");
      if (line) {
        line.textContent = "";
        line.hidden = true;
      }
      var input = field.querySelector("input");
      if (input) {
        input.removeAttribute("aria-invalid");
      }
    });
  }

  function fieldError(input, text) {
    var field = input.closest(".field");
    var line = field && field.querySelector(".field-error");
    if (!line) {
      return;
    }
    field.classList.add("has-error");
    line.textContent = text;
    line.hidden = false;
    input.setAttribute("aria-invalid", "true");
  }

  // Shows `result`'s error: next to the field it concerns (each field of a
  // validation error, else the form's `data-error-field`) and in the summary.
  function showErrors(form, result) {
    clearErrors(form);
    var items = [];
    var details = result.error.details;
    if (result.error.code === "VALIDATION_ERROR" && details && details.length) {
      details.forEach(function (detail) {
        var input = form.querySelector('input[name="' + String(detail.field).replace(/[^a-z_]/gi, "") + '"]');
        items.push({ text: detail.message, input: input });
      });
    } else {
      var name = form.getAttribute("data-error-field");
      items.push({ text: message(result), input: name ? form.querySelector('input[name="' + name + '"]') : null });
    }
    var list = summary ? summary.querySelector("ul") : null;
    items.forEach(function (item) {
      if (item.input) {
        fieldError(item.input, item.text);
      }
      if (list) {
        var li = document.createElement("li");
        if (item.input) {
          var link = document.createElement("a");
          link.href = "#" + item.input.id;
          link.textContent = item.text;
          link.addEventListener("click", function (event) {
            event.preventDefault();
            item.input.focus();
          });
          li.appendChild(link);
        } else {
          li.textContent = item.text;
        }
        list.appendChild(li);
      }
    });
    if (summary) {
      summary.hidden = false;
      summary.focus();
    }
  }

  // Checks the required fields before sending; false if one is empty.
  function checkRequired(form) {
    var missing = [];
    form.querySelectorAll("input[required]").forEach(function (input) {
      if (!input.value.trim()) {
        missing.push(input);
      }
    });
    if (!missing.length) {
      return true;
    }
    clearErrors(form);
    var list = summary ? summary.querySelector("ul") : null;
    missing.forEach(function (input) {
      var label = form.querySelector('label[for="' + input.id + '"]');
      var what = label ? label.textContent.toLowerCase() : input.name;
      var text = (texts["js.required"] || t("error.VALIDATION_ERROR")).replace("{field}", what);
      fieldError(input, text);
      if (list) {
        var li = document.createElement("li");
        var link = document.createElement("a");
        link.href = "#" + input.id;
        link.textContent = text;
        li.appendChild(link);
        list.appendChild(li);
      }
    });
    if (summary) {
      summary.hidden = false;
      summary.focus();
    }
    return false;
  }

  function busy(form, on) {
    form.querySelectorAll("button").forEach(function (button) {
      button.disabled = on;
    });
    form.setAttribute("aria-busy", on ? "true" : "false");
  }

  function value(form, name) {
    var input = form.querySelector('[name="' + name + '"]');
    return input ? input.value : "";
  }

  // Where to go after signing in: the target the server already checked.
  function afterSignIn() {
    window.location.assign(body.getAttribute("data-redirect") || "/account");
  }

  function onSubmit(id, handler) {
    var form = document.getElementById(id);
    if (!form) {
      return;
    }
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      if (!checkRequired(form)) {
        return;
      }
      busy(form, true);
      try {
        await handler(form);
      } finally {
        busy(form, false);
      }
    });
  }

  // ---- the pages ---------------------------------------------------------------

  var pages = {};

  pages["sign-in"] = function () {
    var mfaToken = null;
    var first = document.getElementById("sign-in-form");
    var second = document.getElementById("second-step-form");
    var intro = document.getElementById("sign-in-intro");

    function showFirstStep() {
      mfaToken = null;
      second.hidden = true;
      first.hidden = false;
      if (intro) {
        intro.hidden = false;
      }
    }

    onSubmit("sign-in-form", async function (form) {
      var result = await api("POST", "/login/json", {
        email: value(form, "email"),
        password: value(form, "password"),
      });
      if (!result.ok) {
        showErrors(form, result);
        return;
      }
      if (result.data && result.data.mfa_required) {
        mfaToken = result.data.mfa_token;
        clearErrors(form);
        first.hidden = true;
        if (intro) {
          intro.hidden = true;
        }
        second.hidden = false;
        second.querySelector("input").focus();
        return;
      }
      afterSignIn();
    });

    onSubmit("second-step-form", async function (form) {
      var code = value(form, "code").trim();
      var method = /^[0-9]{6}$/.test(code.replace(/\s/g, "")) ? "totp" : "recovery_code";
      var result = await api("POST", "/mfa/verify", { mfa_token: mfaToken, method: method, code: code });
      if (result.ok) {
        afterSignIn();
        return;
      }
      if (result.error.code === "INVALID_MFA_TOKEN") {
        showFirstStep();
        showErrors(first, result);
        return;
      }
      showErrors(form, result);
    });

    // PASSKEYS: the passkey sign-in (button and autofill) hooks in here,
    // filling `#passkey-slot`; on success it calls afterSignIn().

    var again = document.getElementById("start-again");
    if (again) {
      again.addEventListener("click", function () {
        clearErrors(second);
        showFirstStep();
        first.querySelector("input").focus();
      });
    }
  };

  pages["sign-up"] = function () {
    onSubmit("sign-up-form", async function (form) {
      var data = { email: value(form, "email"), password: value(form, "password") };
      var name = value(form, "name").trim();
      if (name) {
        data.name = name;
      }
      var result = await api("POST", "/register", data);
      if (!result.ok) {
        showErrors(form, result);
        return;
      }
      if (result.data && result.data.access_token) {
        afterSignIn();
        return;
      }
      var done = document.getElementById("check-mail");
      done.querySelector("[data-email]").textContent = data.email;
      form.hidden = true;
      document.getElementById("sign-up-links").hidden = true;
      done.hidden = false;
      done.focus();
    });
  };

  pages["forgot-password"] = function () {
    onSubmit("forgot-form", async function (form) {
      var email = value(form, "email");
      var result = await api("POST", "/forgot-password", { email: email });
      if (!result.ok) {
        showErrors(form, result);
        return;
      }
      var done = document.getElementById("mail-sent");
      done.querySelector("[data-email]").textContent = email;
      form.hidden = true;
      document.getElementById("forgot-hint").hidden = true;
      done.hidden = false;
      done.focus();
    });
  };

  pages.account = async function () {
    var token = null;
    var refreshed = await api("POST", "/refresh");
    if (!refreshed.ok || !refreshed.data || !refreshed.data.access_token) {
      window.location.replace("/sign-in");
      return;
    }
    token = refreshed.data.access_token;
    var me = await api("GET", "/me", undefined, token);
    if (!me.ok) {
      window.location.replace("/sign-in");
      return;
    }
    var user = me.data;
    function fill(name, text) {
      var slot = document.querySelector('[data-field="' + name + '"]');
      if (slot) {
        slot.textContent = text;
      }
    }
    fill("email", user.email);
    fill("name", user.name || texts["js.name_none"] || "—");
    fill("verified", user.is_verified ? texts["js.verified_yes"] || "✓" : texts["js.verified_no"] || "✗");
    fill("created", user.created_at ? new Date(user.created_at).toLocaleDateString(document.documentElement.lang) : "");
    document.getElementById("account-loading").hidden = true;
    document.getElementById("account").hidden = false;

    var signOut = document.getElementById("sign-out");
    signOut.addEventListener("click", async function () {
      signOut.disabled = true;
      await api("POST", "/logout", undefined, token);
      token = null;
      window.location.assign("/sign-in");
    });
  };

  var page = pages[body.getAttribute("data-page")];
  if (page) {
    page();
  }
})();
