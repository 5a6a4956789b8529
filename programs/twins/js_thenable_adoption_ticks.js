function tick(n) { if (n < 7) { console.log("tick", n); queueMicrotask(() => { tick(n + 1); }); } }
function thenable(name, value) {
    return { then: function (resolve, reject) { console.log("then of", name, "called"); resolve(value); } };
}
tick(0);
Promise.resolve(thenable("a", "A")).then((v) => { console.log("Promise.resolve(thenable):", v); });
new Promise((resolve) => { resolve(thenable("b", "B")); }).then((v) => { console.log("resolve(thenable):", v); });
Promise.resolve().then(() => { return thenable("c", "C"); }).then((v) => { console.log("handler returned thenable:", v); });
let twice = { then: function (ok, bad) { ok("p1-fulfill"); ok("p1-fulfill-unexpected-1"); ok("p1-fulfill-unexpected-2"); } };
Promise.all([twice, thenable("d", "p2-fulfill")]).then((vs) => { console.log("Promise.all:", vs); });
let silent = { then: function (ok, bad) { console.log("silent then called: never calls back"); } };
Promise.resolve(silent).then((v) => { console.log("never"); });
console.log("sync end");
