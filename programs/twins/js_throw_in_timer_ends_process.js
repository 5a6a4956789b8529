setTimeout(() => { console.log("timer 1 runs"); }, 10);
setTimeout(() => {
    console.log("timer 2 throws");
    process.nextTick(() => { console.log("its nextTick never runs"); });
    queueMicrotask(() => { console.log("its microtask never runs"); });
    throw "boom";
}, 30);
setTimeout(() => { console.log("timer 3 never runs"); }, 50);
console.log("sync end");
