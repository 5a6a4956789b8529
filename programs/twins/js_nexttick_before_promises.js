setTimeout(() => { console.log("timeout"); }, 0);
Promise.resolve().then(() => { console.log("then 1"); });
queueMicrotask(() => { console.log("microtask 2"); });
process.nextTick(() => { console.log("tick"); });
console.log("sync");
