function tick(n) { if (n < 8) { console.log("tick", n); queueMicrotask(() => { tick(n + 1); }); } }
tick(0);
Promise.resolve("A").finally(() => { return 1; })
    .then((v) => { console.log("A fulfilled:", v); }, (e) => { console.log("A rejected:", e); });
Promise.resolve("B").finally(() => { return Promise.reject("B2"); })
    .then((v) => { console.log("B fulfilled:", v); }, (e) => { console.log("B rejected:", e); });
Promise.reject("C").finally(async () => { throw "C2"; })
    .then((v) => { console.log("C fulfilled:", v); }, (e) => { console.log("C rejected:", e); });
Promise.resolve("D").finally(async () => { return "ignored"; })
    .then((v) => { console.log("D fulfilled:", v); }, (e) => { console.log("D rejected:", e); });
