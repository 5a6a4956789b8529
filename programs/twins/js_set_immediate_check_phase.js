setTimeout(() => {
    console.log("timer (10 ms)");
    setImmediate(() => {
        console.log("immediate 1");
        Promise.resolve().then(() => { console.log("microtask from immediate 1"); });
        process.nextTick(() => { console.log("tick from immediate 1"); });
        setImmediate(() => { console.log("immediate 4 (queued by immediate 1: next iteration)"); });
    });
    setImmediate((a, b) => { console.log("immediate 2 with", a, b); }, "x", 42);
    let gone = setImmediate(() => { console.log("never: cleared"); });
    setImmediate(() => { console.log("immediate 3"); });
    clearImmediate(gone);
    Promise.resolve().then(() => { console.log("microtask from the timer"); });
}, 10);
setTimeout(() => { console.log("timeout 50 ms"); }, 50);
