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
        var fallback = form.getAttribute("data-error-field");
        if (!input && fallback) {
          input = form.querySelector('input[name="' + fallback + '"]');
        }
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
    } else if (items.length && items[0].input) {
      items[0].input.focus();
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

  // ---- passkeys (the README's "From a page" snippet, in this file's shape) ----

  // Whether this browser has WebAuthn with its Level 3 JSON methods.
  function passkeysSupported() {
    return (
      typeof window.PublicKeyCredential === "function" &&
      typeof PublicKeyCredential.parseRequestOptionsFromJSON === "function" &&
      typeof PublicKeyCredential.parseCreationOptionsFromJSON === "function" &&
      !!navigator.credentials
    );
  }

  // Asks the browser for an assertion with `options` (`{publicKey}` of an
  // options answer); `extra` adds `mediation` and `signal`. The
  // browser's own errors (NotAllowedError: cancelled) are thrown as they are.
  async function getAssertion(options, extra) {
    var request = Object.assign({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options.publicKey) }, extra || {});
    var credential = await navigator.credentials.get(request);
    return credential.toJSON();
  }

  // Signs in with a passkey: options (any passkey of this site: discoverable),
  // the browser, `/login/passkey`. `extra` as for getAssertion. Answers an
  // API result; the browser's errors are thrown.
  async function signInWithPasskey(extra) {
    var options = await api("POST", "/login/passkey/options", {});
    if (!options.ok) {
      return options;
    }
    var credential = await getAssertion(options.data.options, extra);
    return api("POST", "/login/passkey", { ceremony_id: options.data.ceremony_id, credential: credential });
  }

  // Passes the second step with a passkey of the account `mfaToken` is for.
  async function secondStepWithPasskey(mfaToken) {
    var options = await api("POST", "/mfa/passkey/options", { mfa_token: mfaToken });
    if (!options.ok) {
      return options;
    }
    var credential = await getAssertion(options.data.options);
    return api("POST", "/mfa/verify", {
      mfa_token: mfaToken,
      method: "passkey",
      ceremony_id: options.data.ceremony_id,
      credential: credential,
    });
  }

  // Adds a passkey to the signed-in account (the password is asked again);
  // answers the API result of `/passkeys/register`.
  async function registerPasskey(token, password, name) {
    var options = await api("POST", "/passkeys/register/options", { password: password }, token);
    if (!options.ok) {
      return options;
    }
    var credential = await navigator.credentials.create({
      publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options.data.options.publicKey),
    });
    var data = { ceremony_id: options.data.ceremony_id, credential: credential.toJSON() };
    if (name) {
      data.name = name;
    }
    return api("POST", "/passkeys/register", data, token);
  }

  // An error the browser threw during a ceremony, as an API-shaped result;
  // null when the person cancelled (or a newer request took over).
  function browserError(e) {
    if (e && (e.name === "NotAllowedError" || e.name === "AbortError")) {
      return null;
    }
    return { ok: false, status: 0, error: { code: e && e.name === "InvalidStateError" ? "PASSKEY_ALREADY_REGISTERED" : "UNKNOWN", message: "" } };
  }

  // Shows `text` in the paragraph `id` (hidden when empty).
  function say(id, text) {
    var line = document.getElementById(id);
    if (line) {
      line.textContent = text || "";
      line.hidden = !text;
    }
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
      if (slot && passkeysSupported()) {
        slot.hidden = false;
      }
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
        if (slot) {
          slot.hidden = true;
        }
        if (intro) {
          intro.hidden = true;
        }
        offerSecondStepPasskey(result.data.methods);
        second.hidden = false;
        second.querySelector("input").focus();
        return;
      }
      await stopAutofill();
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

    // ---- passkeys: the button, the autofill, the second step ----
    var slot = document.getElementById("passkey-slot");
    var autofill = null; // {controller, done} of the conditional request

    // Stops the autofill request (before any other ceremony) and waits
    // until the browser has let go of it.
    async function stopAutofill() {
      var pending = autofill;
      autofill = null;
      if (pending) {
        pending.controller.abort();
        await pending.done;
      }
    }

    // Offers this site's passkeys in the e-mail field's autofill, when the
    // browser can (conditional mediation).
    async function startAutofill() {
      if (
        !passkeysSupported() ||
        typeof PublicKeyCredential.isConditionalMediationAvailable !== "function" ||
        !(await PublicKeyCredential.isConditionalMediationAvailable().catch(function () { return false; }))
      ) {
        return;
      }
      var controller = new AbortController();
      var mine = { controller: controller, done: null };
      autofill = mine;
      mine.done = signInWithPasskey({ mediation: "conditional", signal: controller.signal }).then(
        function (result) {
          if (autofill !== mine) {
            return;
          }
          autofill = null;
          if (result.ok) {
            afterSignIn();
            return;
          }
          // Shown, not retried: the autofill comes back with the button.
          say("passkey-notice", "");
          say("passkey-error", message(result));
        },
        function () {
          // Aborted, cancelled or unsupported: the password and the
          // button still work.
          if (autofill === mine) {
            autofill = null;
          }
        }
      );
    }

    if (slot && passkeysSupported()) {
      slot.hidden = false;
      var passkeyButton = document.getElementById("passkey-sign-in");
      passkeyButton.addEventListener("click", async function () {
        passkeyButton.disabled = true;
        say("passkey-error", "");
        say("passkey-notice", "");
        try {
          await stopAutofill();
          var result = await signInWithPasskey();
          if (result.ok) {
            afterSignIn();
            return;
          }
          say("passkey-error", message(result));
        } catch (e) {
          var failure = browserError(e);
          if (failure) {
            say("passkey-error", message(failure));
          } else {
            say("passkey-notice", t("js.passkey_cancelled"));
          }
        } finally {
          passkeyButton.disabled = false;
        }
        startAutofill();
      });
      startAutofill();
    }

    // The second step's passkey choice, shown when `methods` lists it.
    var secondPasskey = document.getElementById("second-step-passkey");
    var usePasskey = document.getElementById("use-passkey");
    function offerSecondStepPasskey(methods) {
      secondPasskey.hidden = !(passkeysSupported() && methods && methods.indexOf("passkey") >= 0);
      say("second-passkey-error", "");
      say("second-passkey-notice", "");
    }
    usePasskey.addEventListener("click", async function () {
      clearErrors(second);
      say("second-passkey-error", "");
      say("second-passkey-notice", "");
      busy(second, true);
      try {
        await stopAutofill();
        var result = await secondStepWithPasskey(mfaToken);
        if (result.ok) {
          afterSignIn();
          return;
        }
        if (result.error.code === "INVALID_MFA_TOKEN") {
          showFirstStep();
          showErrors(first, result);
          return;
        }
        say("second-passkey-error", result.error.code === "INVALID_MFA_CODE" ? t("error.INVALID_PASSKEY") : message(result));
      } catch (e) {
        var failure = browserError(e);
        if (failure) {
          say("second-passkey-error", message(failure));
        } else {
          say("second-passkey-notice", t("js.passkey_cancelled"));
        }
      } finally {
        busy(second, false);
      }
    });

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
    function currentToken() {
      return token;
    }
    var sessions = sessionsSection(currentToken);
    mfaSection(
      currentToken,
      function (fresh) {
        token = fresh;
      },
      sessions
    );
    passkeysSection(currentToken);

    var signOut = document.getElementById("sign-out");
    signOut.addEventListener("click", async function () {
      signOut.disabled = true;
      await api("POST", "/logout", undefined, token);
      token = null;
      window.location.assign("/sign-in");
    });
  };

  function shortDate(value) {
    return new Date(value).toLocaleDateString(document.documentElement.lang, { year: "numeric", month: "short", day: "numeric" });
  }

  function dateTime(value) {
    return new Date(value).toLocaleString(document.documentElement.lang, {
      year: "numeric",
      month: "short",
      day: "numeric",
      hour: "2-digit",
      minute: "2-digit",
    });
  }

  // A short name for a user agent ("Chrome on Linux"); the string itself
  // when neither the browser nor the system is known.
  function deviceName(agent) {
    if (!agent) {
      return t("js.session_unknown");
    }
    var browsers = [
      [/Edg(e|A|iOS)?\//, "Edge"],
      [/OPR\//, "Opera"],
      [/(Firefox|FxiOS)\//, "Firefox"],
      [/(Chrome|Chromium|CriOS)\//, "Chrome"],
      [/Safari\//, "Safari"],
    ];
    var systems = [
      [/Android/, "Android"],
      [/iPhone|iPad|iPod/, "iOS"],
      [/Windows/, "Windows"],
      [/Mac OS X|Macintosh/, "macOS"],
      [/CrOS/, "ChromeOS"],
      [/Linux/, "Linux"],
    ];
    function find(list) {
      for (var i = 0; i < list.length; i++) {
        if (list[i][0].test(agent)) {
          return list[i][1];
        }
      }
      return null;
    }
    var browser = find(browsers);
    var os = find(systems);
    if (browser && os) {
      return t("js.session_device").replace("{browser}", browser).replace("{os}", os);
    }
    return browser || os || (agent.length > 60 ? agent.slice(0, 60) + "…" : agent);
  }

  // The account's open sessions: the current one marked, a sign-out button
  // on each other one. Answers the function that reloads the list.
  function sessionsSection(token) {
    var section = document.getElementById("sessions");
    if (!section) {
      return function () {};
    }
    var list = document.getElementById("session-list");

    function row(session) {
      var item = document.createElement("li");
      item.setAttribute("data-session-id", session.id);
      var device = deviceName(session.user_agent);
      var text = document.createElement("span");
      text.className = "passkey-text";
      var name = document.createElement("strong");
      name.className = "passkey-name session-device";
      name.textContent = device;
      if (session.user_agent) {
        name.title = session.user_agent;
      }
      var meta = document.createElement("span");
      meta.className = "passkey-meta";
      meta.textContent =
        (session.ip ? session.ip + " · " : "") +
        t("js.session_created").replace("{date}", dateTime(session.created_at)) +
        " · " +
        t("js.session_used").replace("{date}", dateTime(session.last_used_at));
      text.appendChild(name);
      text.appendChild(meta);
      item.appendChild(text);
      var actions = document.createElement("span");
      actions.className = "passkey-actions";
      if (session.current) {
        item.setAttribute("aria-current", "true");
        var mark = document.createElement("span");
        mark.className = "badge";
        mark.textContent = t("js.session_this");
        actions.appendChild(mark);
      } else {
        var button = document.createElement("button");
        button.type = "button";
        button.className = "secondary small";
        button.setAttribute("data-action", "revoke");
        button.textContent = t("js.session_revoke");
        button.setAttribute("aria-label", t("js.session_revoke_label").replace("{device}", device));
        button.addEventListener("click", async function () {
          button.disabled = true;
          say("sessions-status", "");
          var result = await api("DELETE", "/sessions/" + encodeURIComponent(session.id), undefined, token());
          if (!result.ok && result.error.code !== "NOT_FOUND") {
            button.disabled = false;
            say("sessions-error", message(result));
            return;
          }
          await load();
          say("sessions-status", t("js.session_revoked"));
          document.getElementById("sessions-status").focus();
        });
        actions.appendChild(button);
      }
      item.appendChild(actions);
      return item;
    }

    async function load() {
      say("sessions-status", "");
      var result = await api("GET", "/sessions", undefined, token());
      if (!result.ok) {
        say("sessions-error", message(result));
        return;
      }
      say("sessions-error", "");
      list.textContent = "";
      // The current one first, then the most recently used.
      result.data
        .slice()
        .sort(function (a, b) {
          return (b.current ? 1 : 0) - (a.current ? 1 : 0) || String(b.last_used_at).localeCompare(String(a.last_used_at));
        })
        .forEach(function (session) {
          list.appendChild(row(session));
        });
      list.setAttribute("data-loaded", "true");
    }

    load();
    return load;
  }

  // The second factor: status, turn TOTP on (password, QR code and secret,
  // a code, the recovery codes shown once), new recovery codes, turn off.
  // `setToken` takes the new access token TOTP's confirmation answers;
  // `reloadSessions` refreshes the sessions list (others get revoked).
  function mfaSection(token, setToken, reloadSessions) {
    var section = document.getElementById("mfa");
    if (!section) {
      return;
    }
    var forms = ["mfa-setup-form", "mfa-confirm-form", "mfa-regenerate-form", "mfa-disable-form"].map(function (id) {
      return document.getElementById(id);
    });
    var codes = document.getElementById("mfa-codes");
    var on = document.getElementById("mfa-on");
    var off = document.getElementById("mfa-off");

    function showActions(shown) {
      var enabled = section.getAttribute("data-enabled") === "true";
      on.hidden = !shown || !enabled;
      off.hidden = !shown || enabled;
    }

    function closeForms() {
      forms.forEach(function (form) {
        clearErrors(form);
        form.reset();
        form.hidden = true;
      });
      showActions(codes.hidden);
    }

    function open(form) {
      codes.hidden = true;
      closeForms();
      say("mfa-status", "");
      showActions(false);
      form.hidden = false;
      var input = form.querySelector("input");
      if (input) {
        input.focus();
      }
    }

    function done(text) {
      say("mfa-status", text);
      document.getElementById("mfa-status").focus();
    }

    function showCodes(list) {
      var ol = document.getElementById("mfa-code-list");
      ol.textContent = "";
      list.forEach(function (code) {
        var li = document.createElement("li");
        var c = document.createElement("code");
        c.textContent = code;
        li.appendChild(c);
        ol.appendChild(li);
      });
      codes.hidden = false;
      showActions(false);
      document.getElementById("mfa-codes-title").focus();
    }

    async function load() {
      var result = await api("GET", "/mfa", undefined, token());
      if (!result.ok) {
        say("mfa-error", message(result));
        return;
      }
      say("mfa-error", "");
      var enabled = !!(result.data.totp && result.data.totp.enabled);
      section.setAttribute("data-enabled", enabled ? "true" : "false");
      document.getElementById("mfa-state").textContent = enabled
        ? t("js.mfa_on")
            .replace("{date}", result.data.totp.created_at ? shortDate(result.data.totp.created_at) : "")
            .replace("{remaining}", String(result.data.recovery_codes ? result.data.recovery_codes.remaining : 0))
        : t("js.mfa_off");
      showActions(codes.hidden && forms.every(function (form) { return form.hidden; }));
    }

    forms.forEach(function (form) {
      form.querySelector("[data-cancel]").addEventListener("click", function () {
        closeForms();
        var back = section.getAttribute("data-enabled") === "true" ? on : off;
        back.querySelector("button").focus();
      });
    });
    document.getElementById("mfa-turn-on").addEventListener("click", function () {
      open(forms[0]);
    });
    document.getElementById("mfa-new-codes").addEventListener("click", function () {
      open(forms[2]);
    });
    document.getElementById("mfa-turn-off").addEventListener("click", function () {
      open(forms[3]);
    });
    document.getElementById("mfa-codes-done").addEventListener("click", function () {
      codes.hidden = true;
      document.getElementById("mfa-code-list").textContent = "";
      showActions(true);
      on.querySelector("button").focus();
    });

    onSubmit("mfa-setup-form", async function (form) {
      var result = await api("POST", "/mfa/totp/setup", { password: value(form, "mfa_password") }, token());
      if (!result.ok) {
        showErrors(form, result);
        return;
      }
      var confirm = forms[1];
      open(confirm);
      var svg = new TextEncoder().encode(result.data.qr_svg);
      var binary = "";
      svg.forEach(function (byte) {
        binary += String.fromCharCode(byte);
      });
      document.getElementById("mfa-qr").src = "data:image/svg+xml;base64," + btoa(binary);
      document.getElementById("mfa-secret").textContent = result.data.secret.replace(/(.{4})(?=.)/g, "$1 ");
    });

    onSubmit("mfa-confirm-form", async function (form) {
      var result = await api("POST", "/mfa/totp/confirm", { code: value(form, "mfa_code").replace(/\s/g, "") }, token());
      if (!result.ok) {
        showErrors(form, result);
        if (result.error.code === "MFA_SETUP_EXPIRED") {
          closeForms();
          say("mfa-error", message(result));
        }
        return;
      }
      setToken(result.data.access_token);
      closeForms();
      document.getElementById("mfa-qr").removeAttribute("src");
      document.getElementById("mfa-secret").textContent = "";
      await load();
      say("mfa-status", t("js.mfa_enabled"));
      showCodes(result.data.recovery_codes);
      reloadSessions();
    });

    onSubmit("mfa-regenerate-form", async function (form) {
      var result = await api("POST", "/mfa/recovery-codes", { code: value(form, "mfa_regenerate_code").replace(/\s/g, "") }, token());
      if (!result.ok) {
        showErrors(form, result);
        return;
      }
      closeForms();
      await load();
      say("mfa-status", t("js.mfa_codes_saved"));
      showCodes(result.data.recovery_codes);
    });

    onSubmit("mfa-disable-form", async function (form) {
      var result = await api("POST", "/mfa/totp/disable", { code: value(form, "mfa_disable_code").trim() }, token());
      if (!result.ok) {
        showErrors(form, result);
        return;
      }
      closeForms();
      await load();
      done(t("js.mfa_disabled"));
      reloadSessions();
    });

    load();
  }

  // The account's passkeys: list, add, rename, remove (`token()` is the
  // page's access token, in memory).
  function passkeysSection(token) {
    var section = document.getElementById("passkeys");
    if (!section) {
      return;
    }
    var list = document.getElementById("passkey-list");
    var renameForm = document.getElementById("passkey-rename-form");
    var removeForm = document.getElementById("passkey-remove-form");
    var addForm = document.getElementById("passkey-add-form");
    var chosen = null; // the passkey being renamed or removed
    var lang = document.documentElement.lang;

    function date(value) {
      return new Date(value).toLocaleDateString(lang, { year: "numeric", month: "short", day: "numeric" });
    }

    function closeSubForms() {
      [renameForm, removeForm].forEach(function (form) {
        clearErrors(form);
        form.reset();
        form.hidden = true;
      });
      chosen = null;
    }

    function open(form, passkey, from) {
      closeSubForms();
      chosen = passkey;
      from.appendChild(form);
      form.hidden = false;
      form.querySelector("input").focus();
    }

    function row(passkey) {
      var item = document.createElement("li");
      item.setAttribute("data-passkey-id", passkey.id);
      var name = document.createElement("strong");
      name.className = "passkey-name";
      name.textContent = passkey.name;
      var meta = document.createElement("span");
      meta.className = "passkey-meta";
      meta.textContent =
        t("js.passkey_created").replace("{date}", date(passkey.created_at)) +
        " · " +
        (passkey.last_used_at ? t("js.passkey_used").replace("{date}", date(passkey.last_used_at)) : t("js.passkey_never_used"));
      var actions = document.createElement("span");
      actions.className = "passkey-actions";
      [
        ["rename", renameForm],
        ["remove", removeForm],
      ].forEach(function (action) {
        var button = document.createElement("button");
        button.type = "button";
        button.className = "secondary small";
        button.setAttribute("data-action", action[0]);
        button.textContent = t("js.passkey_" + action[0]);
        button.setAttribute("aria-label", t("js.passkey_" + action[0]) + " " + passkey.name);
        button.addEventListener("click", function () {
          open(action[1], passkey, item);
          if (action[0] === "rename") {
            action[1].querySelector("input").value = passkey.name;
          }
        });
        actions.appendChild(button);
      });
      var text = document.createElement("span");
      text.className = "passkey-text";
      text.appendChild(name);
      text.appendChild(meta);
      item.appendChild(text);
      item.appendChild(actions);
      return item;
    }

    async function load() {
      var result = await api("GET", "/passkeys", undefined, token());
      if (!result.ok) {
        say("passkeys-error", message(result));
        return;
      }
      say("passkeys-error", "");
      closeSubForms();
      section.appendChild(renameForm);
      section.appendChild(removeForm);
      section.appendChild(addForm);
      list.textContent = "";
      result.data.forEach(function (passkey) {
        list.appendChild(row(passkey));
      });
      document.getElementById("passkeys-empty").hidden = result.data.length > 0;
    }

    function done(text) {
      say("passkeys-status", text);
      document.getElementById("passkeys-status").focus();
    }

    if (!passkeysSupported()) {
      addForm.hidden = true;
    }

    [renameForm, removeForm].forEach(function (form) {
      form.querySelector("[data-cancel]").addEventListener("click", function () {
        var id = chosen && chosen.id;
        closeSubForms();
        var back = id && list.querySelector('[data-passkey-id="' + id + '"] button');
        if (back) {
          back.focus();
        }
      });
    });

    onSubmit("passkey-add-form", async function (form) {
      say("passkeys-status", "");
      var name = value(form, "passkey_name").trim();
      var result;
      try {
        result = await registerPasskey(token(), value(form, "passkey_password"), name);
      } catch (e) {
        result = browserError(e) || { ok: false, status: 0, error: { code: "CANCELLED", message: t("js.passkey_cancelled") } };
      }
      if (!result.ok) {
        showErrors(form, result);
        return;
      }
      clearErrors(form);
      form.reset();
      await load();
      done(t("js.passkey_added").replace("{name}", result.data.name));
    });

    onSubmit("passkey-rename-form", async function (form) {
      var name = value(form, "passkey_new_name").trim();
      var result = await api("PATCH", "/passkeys/" + encodeURIComponent(chosen.id), { name: name }, token());
      if (!result.ok) {
        showErrors(form, result);
        return;
      }
      await load();
      done(t("js.passkey_renamed").replace("{name}", result.data.name));
    });

    onSubmit("passkey-remove-form", async function (form) {
      var passkey = chosen;
      var result = await api(
        "DELETE",
        "/passkeys/" + encodeURIComponent(passkey.id),
        { password: value(form, "passkey_remove_password") },
        token()
      );
      if (!result.ok) {
        showErrors(form, result);
        return;
      }
      await load();
      done(t("js.passkey_removed").replace("{name}", passkey.name));
    });

    load();
  }

  var page = pages[body.getAttribute("data-page")];
  if (page) {
    page();
  }
})();
