function tick(n) { console.log("tick", n); if (n < 5) { queueMicrotask(() => { tick(n + 1); }); } }
queueMicrotask(() => { tick(1); });
const inner = Promise.resolve("inner value");
const adopted = new Promise((resolve) => { resolve(inner); });
const direct = new Promise((resolve) => { resolve("plain value"); });
adopted.then((v) => { console.log("adopted:", v); });
direct.then((v) => { console.log("direct:", v); });
