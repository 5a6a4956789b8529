function tick(n) { console.log("tick", n); if (n < 5) { queueMicrotask(() => { tick(n + 1); }); } }
queueMicrotask(() => { tick(1); });
async function noAwait() { return 1; }
async function oneAwait() { await undefined; return 2; }
async function a() { const v = await noAwait(); console.log("a: got", v); }
async function b() { const v = await oneAwait(); console.log("b: got", v); }
a();
b();
