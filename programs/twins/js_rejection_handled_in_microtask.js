const p = Promise.reject("early");
queueMicrotask(() => {
    p.catch((e) => { console.log("caught in time:", e); });
});
setTimeout(() => { console.log("timer runs"); }, 0);
console.log("script end");
