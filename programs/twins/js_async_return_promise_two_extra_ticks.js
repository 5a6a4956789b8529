function tick(n) { console.log("tick", n); if (n < 5) { queueMicrotask(() => { tick(n + 1); }); } }
queueMicrotask(() => { tick(1); });
async function returnsPlain() { return "plain"; }
async function returnsPromise() { return Promise.resolve("promise"); }
returnsPromise().then((v) => { console.log("then:", v); });
returnsPlain().then((v) => { console.log("then:", v); });
