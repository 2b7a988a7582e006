/* hal0 spend control: the persona page's Budget form. No build step, no external assets.
   Keeps the note beside each cap field saying what its text will be saved as while the
   operator types: empty = no cap, 0 = a cap of zero, otherwise the parsed amount
   ("= $1,234.50"), or why it would be refused (an ambiguous comma, more than 9 decimal
   places). The server renders the same note first (personas/admin/budget_form.py,
   cap_note), so the page reads the same without JavaScript, and the server's check has
   the last word on Save. Amounts are handled as decimal digit strings, never as binary
   floats: "1e-400" must not read as 0. */
"use strict";
(function () {
    const NOTES = {
        none: "no cap: never limited",
        zero: "a cap of zero: every call with a cost is over it",
    };
    const GROUPED = /^\d{1,3}(,\d{3})+(\.\d*)?$/;
    const NUMBER = /^\+?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;
    const MAX_INTEGER_DIGITS = 10; // 1,000,000,000 USD is the largest cap

    function withThousands(digits) {
        return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    }

    // [kind, text] as cap_note() gives them on the server.
    function note(raw) {
        let text = raw.trim().replace(/^\$/, "").trim();
        if (text === "") {
            return ["none", NOTES.none];
        }
        if (text.includes(",")) {
            const clear = GROUPED.test(text) && (text.split(",").length > 2 || text.includes("."));
            if (!clear) {
                return ["invalid", "ambiguous comma: write 0.5 or 1000"];
            }
            text = text.replace(/,/g, "");
        }
        if (/^-/.test(text)) {
            return ["invalid", "must be a number from 0 to 1,000,000,000"];
        }
        const m = NUMBER.exec(text);
        if (!m || (m[1] === "" && (m[2] || "") === "")) {
            return ["invalid", "not an amount"];
        }
        const fraction = m[2] || "";
        let digits = (m[1] + fraction).replace(/^0+/, "");
        if (digits === "") {
            return ["zero", NOTES.zero];
        }
        // value = digits x 10^exponent, with no trailing zeros in digits.
        let exponent = parseInt(m[3] || "0", 10) - fraction.length;
        const trailing = digits.length - digits.replace(/0+$/, "").length;
        digits = digits.slice(0, digits.length - trailing);
        exponent += trailing;
        const integerDigits = digits.length + exponent; // digits before the point
        if (integerDigits > MAX_INTEGER_DIGITS) {
            return ["invalid", "must be a number from 0 to 1,000,000,000"];
        }
        if (exponent < -9) {
            return integerDigits <= -9
                ? ["invalid", "below $0.000000001: would be a cap of zero"]
                : ["invalid", "more than 9 decimal places"];
        }
        let whole;
        let part;
        if (exponent >= 0) {
            whole = digits + "0".repeat(exponent);
            part = "";
        } else {
            const padded = digits.padStart(-exponent + 1, "0");
            whole = padded.slice(0, padded.length + exponent);
            part = padded.slice(padded.length + exponent);
        }
        whole = whole.replace(/^0+(?=\d)/, "");
        if (whole.length > MAX_INTEGER_DIGITS || (whole.length === MAX_INTEGER_DIGITS && (whole !== "1000000000" || part !== ""))) {
            return ["invalid", "must be a number from 0 to 1,000,000,000"];
        }
        // Cents when the amount has no more, every digit when it has (as the server).
        part = part.length <= 2 ? part.padEnd(2, "0") : part;
        return ["cap", "= $" + withThousands(whole) + "." + part];
    }

    function bind(input) {
        const span = input.parentElement.querySelector(".hal0-capnote");
        if (!span) {
            return;
        }
        const update = function () {
            const [kind, text] = note(input.value);
            span.textContent = text;
            span.dataset.kind = kind;
            span.className = "hal0-capnote " + kind;
        };
        input.addEventListener("input", update);
        update();
    }

    function init() {
        document.querySelectorAll("input.hal0-usd").forEach(bind);
    }

    if (document.readyState === "loading") {
        document.addEventListener("DOMContentLoaded", init);
    } else {
        init();
    }
})();
