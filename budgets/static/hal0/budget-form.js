/* hal0 spend control: the persona page's Budget form. No build step, no external assets.
   Keeps the note beside each cap field saying what its value means while the operator
   types: empty = no cap, 0 = a cap of zero. The server renders the same note first, so the
   page reads the same without JavaScript. */
"use strict";
(function () {
    const NOTES = {
        none: "no cap: never limited",
        zero: "a cap of zero: every call with a cost is over it",
        cap: "",
    };

    function kind(text) {
        const value = text.trim().replace(/^\$/, "").trim().replace(/,/g, "");
        if (value === "") {
            return "none";
        }
        return /^[+]?0*\.?0*$/.test(value) && /0/.test(value) ? "zero" : "cap";
    }

    function bind(input) {
        const note = input.parentElement.querySelector(".hal0-capnote");
        if (!note) {
            return;
        }
        const update = function () {
            const k = kind(input.value);
            note.textContent = NOTES[k];
            note.dataset.kind = k;
            note.className = "hal0-capnote " + k;
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
