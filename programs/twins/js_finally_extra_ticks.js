function tick(n) { console.log("tick", n); if (n < 6) { queueMicrotask(() => { tick(n + 1); }); } }
queueMicrotask(() => { tick(1); });
Promise.resolve("v").finally(() => { console.log("finally callback"); }).then((v) => { console.log("then after finally:", v); });
Promise.resolve("v").then((v) => { console.log("then callback"); return v; }).then((v) => { console.log("then after then:", v); });
