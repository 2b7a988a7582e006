// Accessibility fixes for widgets Django's admin builds itself (its templates are not
// ours to change): names for the date and time inputs of a split date-time field, and a
// role for the filter widgets' search icons so their aria-label is allowed.
(function () {
    "use strict";
    function fix() {
        document.querySelectorAll("p.datetime").forEach(function (p) {
            var row = p.closest(".form-row, .fieldBox, div");
            var label = row ? row.querySelector("label") : null;
            var name = label ? label.textContent.replace(/:\s*$/, "").trim() : "";
            p.querySelectorAll("input").forEach(function (input, i) {
                if (!input.labels || input.labels.length === 0) {
                    input.setAttribute("aria-label", (name ? name + ": " : "") + (i === 0 ? "date" : "time"));
                }
            });
        });
        document.querySelectorAll(".help-tooltip[aria-label]").forEach(function (span) {
            span.setAttribute("role", "img");
        });
        // After a failed save, focus goes to the first field with an error.
        var error = document.querySelector(".errorlist");
        if (error && document.querySelector(".errornote")) {
            var row = error.closest(".form-row") || error.parentElement;
            var field = row ? row.querySelector("input:not([type=hidden]), select, textarea") : null;
            if (field) { field.focus(); }
        }
    }
    if (document.readyState === "complete") { fix(); } else { window.addEventListener("load", fix); }
})();

// Copy buttons (the new API key): the clipboard API where the page is a secure context,
// else the selection and execCommand (plain http on a LAN); the button says what happened.
(function () {
    "use strict";
    function done(button, text) {
        button.textContent = text;
        button.setAttribute("aria-live", "polite");
    }
    document.addEventListener("click", function (event) {
        var button = event.target.closest ? event.target.closest(".hal0-copy") : null;
        if (!button) { return; }
        var source = document.querySelector(button.getAttribute("data-copy"));
        if (!source) { return; }
        var text = source.textContent.trim();
        function fallback() {
            var range = document.createRange();
            range.selectNodeContents(source);
            var selection = window.getSelection();
            selection.removeAllRanges();
            selection.addRange(range);
            var ok = false;
            try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
            done(button, ok ? "Copied" : "Selected: press Ctrl+C");
        }
        if (navigator.clipboard && window.isSecureContext) {
            navigator.clipboard.writeText(text).then(function () { done(button, "Copied"); }, fallback);
        } else {
            fallback();
        }
    });
})();
