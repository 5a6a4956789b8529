function tick(n) { console.log("tick", n); if (n < 5) { queueMicrotask(() => { tick(n + 1); }); } }
queueMicrotask(() => { tick(1); });
const p = Promise.resolve("v");
const same = Promise.resolve(p);
const wrapped = new Promise((resolve) => { resolve(p); });
console.log("Promise.resolve(p) == p:", same == p);
console.log("new promise resolved with p == p:", wrapped == p);
wrapped.then((v) => { console.log("wrapped then:", v); });
same.then((v) => { console.log("same then:", v); });
